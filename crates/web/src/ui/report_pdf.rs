//! The procedure report as a PDF for the chart and for referrers without access: A4, the
//! patient's identification on every page, the report's status (a draft says so on every page),
//! the text exactly as signed and sent (sections, signature, addenda). Base-14 fonts (Helvetica,
//! Courier), so nothing is embedded and every reader shows it.

use printpdf::{BuiltinFont, IndirectFontRef, Mm, PdfDocument, PdfLayerReference};

const WIDTH: f32 = 210.0;
const HEIGHT: f32 = 297.0;
const MARGIN: f32 = 18.0;
const BODY_PT: f32 = 9.5;
const LINE: f32 = 4.4;
/// Courier's glyphs are 0.6 em wide: (210 - 2 * 18) mm / (9.5 pt * 0.6 * 0.3528 mm/pt) = 86.
const COLUMNS: usize = 86;

/// What the PDF shows besides the report's text.
pub struct PdfHeading<'a> {
    pub procedure: &'a str,
    pub patient: &'a str,
    pub mrn: &'a str,
    pub birth_date: &'a str,
    pub accession: &'a str,
    pub case_id: &'a str,
    /// "FINAL", "FINAL WITH ADDENDA" or "DRAFT - NOT SIGNED".
    pub status: &'a str,
    pub printed: &'a str,
}

/// Characters the base-14 fonts' WinAnsi encoding lacks, as their plain equivalents.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '≥' => ">=".to_string(),
            '≤' => "<=".to_string(),
            '→' => "->".to_string(),
            '×' => "x".to_string(),
            '\u{2009}' | '\u{202f}' | '\u{00a0}' => " ".to_string(),
            c if c.is_control() && c != '\n' => " ".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// The text broken into lines of at most `columns` characters, at spaces where it can.
fn wrap(text: &str, columns: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split(' ') {
            let mut word = word.to_string();
            while word.chars().count() > columns {
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                let head: String = word.chars().take(columns).collect();
                word = word.chars().skip(columns).collect();
                lines.push(head);
            }
            let needed =
                line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
            if needed > columns && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        lines.push(line);
    }
    lines
}

/// A section title as `plain_text` writes it: a line in capitals.
fn is_title(line: &str) -> bool {
    line.chars().any(char::is_alphabetic)
        && !line.chars().any(char::is_lowercase)
        && line.chars().count() < 60
}

struct Fonts {
    regular: IndirectFontRef,
    bold: IndirectFontRef,
    mono: IndirectFontRef,
}

fn page_top(layer: &PdfLayerReference, fonts: &Fonts, h: &PdfHeading<'_>, page: usize) -> f32 {
    let mut y = HEIGHT - MARGIN;
    layer.use_text(
        printable(&format!("Procedure report: {}", h.procedure)),
        13.0,
        Mm(MARGIN),
        Mm(y),
        &fonts.bold,
    );
    y -= 6.5;
    layer.use_text(
        printable(&format!(
            "{}   MRN {}   born {}   accession {}",
            h.patient, h.mrn, h.birth_date, h.accession
        )),
        10.0,
        Mm(MARGIN),
        Mm(y),
        &fonts.regular,
    );
    y -= 5.5;
    layer.use_text(
        printable(&format!("Status: {}", h.status)),
        10.0,
        Mm(MARGIN),
        Mm(y),
        &fonts.bold,
    );
    layer.use_text(
        printable(&format!("Page {page}")),
        8.0,
        Mm(WIDTH - MARGIN - 12.0),
        Mm(y),
        &fonts.regular,
    );
    layer.use_text(
        printable(&format!("Case {}; printed {}", h.case_id, h.printed)),
        7.5,
        Mm(MARGIN),
        Mm(MARGIN - 8.0),
        &fonts.regular,
    );
    y - 8.0
}

/// The report as PDF bytes.
pub fn report_pdf(heading: &PdfHeading<'_>, text: &str) -> Result<Vec<u8>, String> {
    let title = printable(&format!("Procedure report {}", heading.case_id));
    let (doc, page, layer) = PdfDocument::new(title, Mm(WIDTH), Mm(HEIGHT), "report");
    let font = |f| doc.add_builtin_font(f).map_err(|e| e.to_string());
    let fonts = Fonts {
        regular: font(BuiltinFont::Helvetica)?,
        bold: font(BuiltinFont::HelveticaBold)?,
        mono: font(BuiltinFont::Courier)?,
    };
    let mut pages = 1;
    let mut layer = doc.get_page(page).get_layer(layer);
    let mut y = page_top(&layer, &fonts, heading, pages);
    for line in wrap(&printable(text), COLUMNS) {
        if y < MARGIN {
            pages += 1;
            let (page, next) = doc.add_page(Mm(WIDTH), Mm(HEIGHT), "report");
            layer = doc.get_page(page).get_layer(next);
            y = page_top(&layer, &fonts, heading, pages);
        }
        if is_title(&line) {
            y -= 1.5;
            layer.use_text(line, 10.0, Mm(MARGIN), Mm(y), &fonts.bold);
        } else if !line.is_empty() {
            layer.use_text(line, BODY_PT, Mm(MARGIN), Mm(y), &fonts.mono);
        }
        y -= LINE;
    }
    doc.save_to_bytes().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wrap_at_spaces_and_long_words_are_cut() {
        let lines = wrap("one two three\nfourfivesixseven", 9);
        assert_eq!(lines, ["one two", "three", "fourfives", "ixseven"]);
        assert!(is_title("CONTRAST AND RADIATION DOSE"));
        assert!(!is_title("Kerma-area product 12 Gy.cm2"));
        assert_eq!(printable("≥ 5 Gy"), ">= 5 Gy");
    }
}
