//! One CSV field as every download writes it: RFC 4180 quoting, and text a spreadsheet would run
//! as a formula (OWASP's list: = + - @, a leading tab or carriage return) given a leading quote.
//! A number is written as it is (a negative value is data, not a formula).

pub fn field(value: &str) -> String {
    let number = !value.is_empty() && value.parse::<f64>().is_ok();
    let guarded = if !number && value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_are_quoted_and_formula_safe_and_numbers_stay_numbers() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=cmd()"), "'=cmd()");
        assert_eq!(field("-2+3+cmd|' /C calc'!A0"), "'-2+3+cmd|' /C calc'!A0");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("\t=cmd()"), "'\t=cmd()");
        assert_eq!(field("\r=cmd()"), "\"'\r=cmd()\"");
        assert_eq!(field("-3.5"), "-3.5");
        assert_eq!(field("+7"), "+7");
    }
}
