//! A received message read as text in its declared character set, with each value fetched by
//! its place (segment, field, repetition, component) so that any complaint names that place.

use crate::charset::{msh18_of, Charset};
use crate::problem::{ErrorCode, Problem};
use hl7kit::{Encoding, Message};

/// Where in a message a value is: HL7's error location (ERR-2, data type ERL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub segment: String,
    /// Which of the segments with this name (1 = the first).
    pub occurrence: usize,
    pub field: usize,
    pub repetition: usize,
    pub component: Option<usize>,
}

impl Location {
    pub fn new(segment: &str, field: usize) -> Location {
        Location {
            segment: segment.to_string(),
            occurrence: 1,
            field,
            repetition: 1,
            component: None,
        }
    }

    pub fn component(mut self, component: usize) -> Location {
        self.component = Some(component);
        self
    }

    /// As people write it: `PID-3.4`, `OBX[2]-5`, `PID-3[2].1`.
    pub fn path(&self) -> String {
        let mut out = self.segment.clone();
        if self.occurrence > 1 {
            out.push_str(&format!("[{}]", self.occurrence));
        }
        out.push_str(&format!("-{}", self.field));
        if self.repetition > 1 {
            out.push_str(&format!("[{}]", self.repetition));
        }
        if let Some(c) = self.component {
            out.push_str(&format!(".{c}"));
        }
        out
    }
}

/// A value as HL7 sends it: nothing (leave as is), `""` (delete what is there), or text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Absent,
    Delete,
    Text(String),
}

impl Value {
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// A message read in its character set and parsed.
#[derive(Debug)]
pub struct Received {
    pub message: Message,
    pub charset: Charset,
}

impl Received {
    /// Reads raw bytes: the character set from MSH-18, then the message. Refused (AR) when the
    /// set is unknown, the bytes are not in it, or the text is not an HL7 v2 message.
    pub fn read(raw: &[u8]) -> Result<Received, Problem> {
        let unreadable =
            |reason: String| Problem::new(ErrorCode::ApplicationInternalError, None, reason);
        let charset = Charset::declared(&msh18_of(raw)).map_err(|reason| {
            Problem::new(
                ErrorCode::TableValueNotFound,
                Some(Location::new("MSH", 18)),
                reason,
            )
        })?;
        let text = charset.decode(raw).map_err(unreadable)?;
        let message =
            Message::parse(text).map_err(|e| unreadable(format!("not an HL7 v2 message: {e}")))?;
        if message
            .warnings()
            .iter()
            .any(|w| matches!(w, hl7kit::Warning::EncodingFallback { .. }))
        {
            return Err(Problem::new(
                ErrorCode::DataTypeError,
                Some(Location::new("MSH", 2)),
                "MSH-2 is not a valid set of encoding characters (component, repetition, escape, subcomponent: e.g. ^~\\&)".to_string(),
            ));
        }
        Ok(Received { message, charset })
    }

    pub fn encoding(&self) -> Encoding {
        self.message.encoding()
    }

    /// The segments named `name`, each with its occurrence number.
    pub fn segments<'m>(&'m self, name: &'m str) -> impl Iterator<Item = Seg<'m>> + 'm {
        self.message
            .segments_named(name)
            .enumerate()
            .map(move |(i, segment)| Seg {
                received: self,
                segment,
                occurrence: i + 1,
            })
    }

    pub fn segment<'m>(&'m self, name: &'m str) -> Option<Seg<'m>> {
        self.segments(name).next()
    }

    /// The header's value at `field`.`component`, decoded.
    pub fn header(&self, field: usize, component: usize) -> String {
        self.segment("MSH")
            .and_then(|msh| msh.get(field, component).text().map(str::to_string))
            .unwrap_or_default()
    }

    /// Decodes escape sequences; `\Xhh\` bytes are read in the message's character set (the
    /// parser alone would read them as UTF-8).
    pub fn decode(&self, raw: &str) -> String {
        let encoding = self.encoding();
        let escape = encoding.escape as char;
        if !raw.contains(escape) {
            return raw.to_string();
        }
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(start) = rest.find(escape) {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find(escape) else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let sequence = &after[..end];
            match hex_bytes(sequence) {
                Some(bytes) => out.push_str(&self.charset.decode_hex_escape(&bytes)),
                None => out.push_str(&hl7kit::unescape(
                    &format!("{escape}{sequence}{escape}"),
                    encoding,
                )),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

fn hex_bytes(sequence: &str) -> Option<Vec<u8>> {
    let hex = sequence.strip_prefix('X')?;
    if hex.is_empty() || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// One segment of a received message.
#[derive(Clone, Copy)]
pub struct Seg<'m> {
    received: &'m Received,
    pub segment: hl7kit::Segment<'m>,
    pub occurrence: usize,
}

impl<'m> Seg<'m> {
    pub fn name(&self) -> &'m str {
        self.segment.name()
    }

    /// The place of `field` in this segment (for errors).
    pub fn at(&self, field: usize) -> Location {
        Location {
            segment: self.name().to_ascii_uppercase(),
            occurrence: self.occurrence,
            field,
            repetition: 1,
            component: None,
        }
    }

    /// Component `component` of the first repetition of `field`.
    pub fn get(&self, field: usize, component: usize) -> Value {
        self.get_in(field, 1, component)
    }

    /// Component `component` of repetition `repetition` of `field`.
    pub fn get_in(&self, field: usize, repetition: usize, component: usize) -> Value {
        let Some(f) = self.segment.field(field) else {
            return Value::Absent;
        };
        if f.is_null() {
            return Value::Delete;
        }
        let Some(c) = f
            .repetition(repetition)
            .and_then(|r| r.component(component))
        else {
            return Value::Absent;
        };
        match c.value() {
            "" => Value::Absent,
            "\"\"" => Value::Delete,
            raw => Value::Text(self.received.decode(raw)),
        }
    }

    /// Subcomponent `sub` of component `component` of the first repetition of `field`.
    pub fn get_sub(&self, field: usize, repetition: usize, component: usize, sub: usize) -> Value {
        let value = self
            .segment
            .field(field)
            .and_then(|f| f.repetition(repetition))
            .and_then(|r| r.component(component))
            .and_then(|c| c.subcomponent(sub))
            .map(|s| s.value())
            .unwrap_or("");
        match value {
            "" => Value::Absent,
            "\"\"" => Value::Delete,
            raw => Value::Text(self.received.decode(raw)),
        }
    }

    /// How many repetitions `field` has (0 when empty).
    pub fn repetitions(&self, field: usize) -> usize {
        match self.segment.field(field) {
            Some(f) if !f.is_empty() => f.repetition_count(),
            _ => 0,
        }
    }

    /// A value that must be there, or the problem naming where it is missing.
    pub fn required(&self, field: usize, component: usize, what: &str) -> Result<String, Problem> {
        match self.get(field, component) {
            Value::Text(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
            _ => Err(Problem::new(
                ErrorCode::RequiredFieldMissing,
                Some(self.at(field).component(component)),
                format!("{what} is required"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_in_the_declared_set_and_empty_differs_from_delete() {
        let raw = b"MSH|^~\\&|PAS|GEN|SELDINGER|IR|20261201||ADT^A08|1|P|2.5.1||||||8859/1\r\
PID|1||123^^^GEN^MR||\\XD6\\sterberg\\S\\Jr^Ann\\T\\Bo\\F\\x||\"\"|||\r";
        let received = Received::read(raw).unwrap();
        let pid = received.segment("PID").unwrap();
        assert_eq!(pid.get(5, 1), Value::Text("Österberg^Jr".into()));
        assert_eq!(pid.get(5, 2), Value::Text("Ann&Bo|x".into()));
        assert_eq!(pid.get(7, 1), Value::Delete);
        assert_eq!(pid.get(8, 1), Value::Absent);
        assert_eq!(pid.get(3, 4), Value::Text("GEN".into()));
        assert_eq!(pid.at(3).component(4).path(), "PID-3.4");
    }

    #[test]
    fn unreadable_messages_are_refused_with_the_reason() {
        assert!(Received::read(b"").is_err());
        assert!(Received::read(b"PID|1||123\r").is_err());
        let bad_delimiters = Received::read(b"MSH|^^^^|A|B|C|D|2026||ADT^A01|1|P|2.5\r");
        assert!(bad_delimiters.unwrap_err().reason.contains("MSH-2"));
    }
}
