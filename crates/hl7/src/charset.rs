//! The character set a message declares in MSH-18, and its bytes read as text. HL7 v2 sends
//! bytes: an ISO 8859-1 "é" is one byte that is not UTF-8, so the header is read first (its
//! characters are ASCII in every set) and the whole message decoded as it says.

/// The character sets accepted (HL7 table 0211).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Ascii,
    Latin1,
    Utf8,
}

impl Charset {
    /// MSH-18 as written for this set.
    pub fn msh18(self) -> &'static str {
        match self {
            Charset::Ascii => "ASCII",
            Charset::Latin1 => "8859/1",
            Charset::Utf8 => "UNICODE UTF-8",
        }
    }

    /// Reads MSH-18. Unsent: ASCII per the standard, though many senders mean UTF-8 — UTF-8 is
    /// a superset, so an unsent set is read as UTF-8 and refused only if the bytes are not.
    pub fn declared(msh18: &str) -> Result<Charset, String> {
        match msh18.trim().to_ascii_uppercase().as_str() {
            "" | "UNICODE UTF-8" | "UTF-8" | "UTF8" => Ok(Charset::Utf8),
            "ASCII" => Ok(Charset::Ascii),
            "8859/1" | "ISO-8859-1" | "ISO_IR 100" | "ISO IR100" => Ok(Charset::Latin1),
            other => Err(format!(
                "character set '{other}' (MSH-18) is not supported: send ASCII, 8859/1 or UNICODE UTF-8"
            )),
        }
    }

    /// The bytes as text.
    pub fn decode(self, bytes: &[u8]) -> Result<String, String> {
        match self {
            Charset::Utf8 => String::from_utf8(bytes.to_vec()).map_err(|e| {
                format!(
                    "the message is not valid UTF-8 (byte {} is not); declare its character set in MSH-18 (e.g. 8859/1)",
                    e.utf8_error().valid_up_to()
                )
            }),
            Charset::Ascii => match bytes.iter().position(|b| !b.is_ascii()) {
                Some(at) => Err(format!(
                    "byte {at} is not ASCII, but MSH-18 declares ASCII; declare 8859/1 or UNICODE UTF-8"
                )),
                None => Ok(bytes.iter().map(|&b| b as char).collect()),
            },
            // Every byte is the Unicode code point of the same number.
            Charset::Latin1 => Ok(bytes.iter().map(|&b| b as char).collect()),
        }
    }

    /// Text as this set's bytes; a character the set cannot carry is written as its HL7 hex
    /// escape of UTF-8 bytes would not be read back right, so it becomes `?`.
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Charset::Utf8 => text.as_bytes().to_vec(),
            Charset::Latin1 => text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect(),
            Charset::Ascii => text
                .chars()
                .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
                .collect(),
        }
    }

    /// The text of `\Xhh..\` hex escape bytes, read in this set.
    pub fn decode_hex_escape(self, bytes: &[u8]) -> String {
        match self {
            Charset::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Charset::Latin1 | Charset::Ascii => bytes.iter().map(|&b| b as char).collect(),
        }
    }
}

/// MSH-18 of raw message bytes, read before the message is decoded: the header's first segment
/// up to MSH-18 is ASCII whatever the set. Empty when absent or unreadable.
pub fn msh18_of(bytes: &[u8]) -> String {
    let start = bytes
        .windows(3)
        .position(|w| w == b"MSH")
        .unwrap_or(usize::MAX);
    let Some(header) = bytes.get(start..) else {
        return String::new();
    };
    let end = header
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(header.len());
    let header = &header[..end];
    let Some(&separator) = header.get(3) else {
        return String::new();
    };
    // Split on the field separator: piece 0 is "MSH", piece n is MSH-(n+1).
    header
        .split(|&b| b == separator)
        .nth(17)
        .map(|field| {
            let first_repetition = field.split(|&b| b == b'~').next().unwrap_or(field);
            String::from_utf8_lossy(first_repetition).trim().to_string()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_the_set_and_latin1_bytes_read_as_latin1() {
        let raw = b"MSH|^~\\&|PAS|GEN|SELDINGER|IR|20261201||ADT^A08|1|P|2.5.1||||||8859/1\rPID|1||X||M\xfcller\r";
        assert_eq!(msh18_of(raw), "8859/1");
        let set = Charset::declared(&msh18_of(raw)).unwrap();
        assert!(set.decode(raw).unwrap().contains("Müller"));
        assert!(Charset::Utf8.decode(raw).is_err());
        assert!(Charset::Ascii.decode(raw).is_err());
        assert!(Charset::declared("ISO IR87").is_err());
        assert_eq!(msh18_of(b"MSH|^~\\&|A"), "");
    }

    #[test]
    fn encoding_round_trips_what_the_set_can_carry() {
        assert_eq!(Charset::Latin1.encode("Müller"), b"M\xfcller");
        assert_eq!(Charset::Ascii.encode("Müller"), b"M?ller");
        assert_eq!(Charset::Latin1.decode_hex_escape(&[0xe9]), "é");
        assert_eq!(Charset::Utf8.decode_hex_escape(&[0xc3, 0xa9]), "é");
    }
}
