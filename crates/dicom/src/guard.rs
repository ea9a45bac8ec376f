//! A cheap structural check run before dicom-rs reads untrusted bytes.
//!
//! Why: dicom-rs 0.10 sizes a value's buffer from the length its header claims and zero-fills it
//! before reading (`Vec::resize` in dicom-parser's stateful decoder). A corrupted or hostile length
//! of up to 4 GiB therefore costs seconds of page-zeroing before the short read fails
//! (docs/dose-plan.md, "robustness"). This walk reads only element headers, refuses any value
//! that claims more bytes than remain, and so bounds the work by the input's size. It does not
//! interpret values: dicom-rs still does all the parsing.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

/// The largest report accepted. Dose reports are text trees of a few kilobytes to a few megabytes
/// (long CT or fluoroscopy studies with thousands of events); anything larger is not an RDSR.
pub const MAX_REPORT_BYTES: usize = 64 * 1024 * 1024;

const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";
const UNDEFINED_LENGTH: u32 = 0xFFFF_FFFF;
const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_DELIMITATION: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_DELIMITATION: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);

/// How the data set after the file meta group is encoded, as far as this walk is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    ExplicitLittle,
    ImplicitLittle,
    /// Deflated or big endian: left to dicom-rs unchecked (rare for dose reports; the size cap
    /// still applies).
    Unchecked,
}

impl Encoding {
    pub fn of_transfer_syntax(uid: &str) -> Self {
        match uid.trim_end_matches(['\0', ' ']) {
            EXPLICIT_VR_LITTLE_ENDIAN => Encoding::ExplicitLittle,
            IMPLICIT_VR_LITTLE_ENDIAN => Encoding::ImplicitLittle,
            _ => Encoding::Unchecked,
        }
    }
}

/// Checks a DICOM file (128-byte preamble, "DICM", file meta group, data set).
pub fn check_file(bytes: &[u8]) -> Result<(), String> {
    check_size(bytes.len())?;
    if bytes.len() < 132 || &bytes[128..132] != b"DICM" {
        return Err("no DICOM preamble: bytes 128–131 are not \"DICM\"".into());
    }
    let mut walk = Walk::new(bytes, 132, Encoding::ExplicitLittle);
    let mut transfer_syntax = None;
    // The file meta group is always explicit VR little endian (PS3.10 §7.1).
    while let Some(header) = walk.peek_group()? {
        if header != 0x0002 {
            break;
        }
        let header = walk.next_header()?;
        if header.length == UNDEFINED_LENGTH {
            return Err("a file meta element has an undefined length".into());
        }
        let value = &bytes[walk.at..walk.at + header.length as usize];
        if header.tag == Tag(0x0002, 0x0010) {
            transfer_syntax = Some(String::from_utf8_lossy(value).into_owned());
        }
        walk.at += value.len();
    }
    let transfer_syntax =
        transfer_syntax.ok_or("the file meta group has no Transfer Syntax UID (0002,0010)")?;
    walk.encoding = Encoding::of_transfer_syntax(&transfer_syntax);
    walk.finish()
}

/// Checks a data set without preamble or meta group, as a C-STORE delivers it.
pub fn check_dataset(bytes: &[u8], encoding: Encoding) -> Result<(), String> {
    check_size(bytes.len())?;
    Walk::new(bytes, 0, encoding).finish()
}

/// The largest query identifier (C-FIND) or step (N-CREATE, N-SET) accepted: a worklist query
/// is a few hundred bytes, an MPPS message a few kilobytes.
pub const MAX_QUERY_BYTES: usize = 256 * 1024;

/// How deep sequences and items may nest in a query: the worklist's deepest key is a code
/// inside the scheduled step (sequence, item, sequence, item); an MPPS one level more. The
/// limit keeps a hostile nesting from exhausting dicom-rs's recursive reader.
pub const MAX_QUERY_NESTING: usize = 8;

/// Checks a query identifier or an MPPS data set: its size, its structure, its nesting.
pub fn check_query(bytes: &[u8], encoding: Encoding) -> Result<(), String> {
    if bytes.len() > MAX_QUERY_BYTES {
        return Err(format!(
            "{} bytes is larger than any worklist query or procedure step (limit {MAX_QUERY_BYTES} bytes)",
            bytes.len()
        ));
    }
    let mut walk = Walk::new(bytes, 0, encoding);
    walk.max_nesting = Some(MAX_QUERY_NESTING);
    walk.finish()
}

fn check_size(len: usize) -> Result<(), String> {
    if len > MAX_REPORT_BYTES {
        return Err(format!(
            "{len} bytes is larger than any dose report (limit {MAX_REPORT_BYTES} bytes)"
        ));
    }
    Ok(())
}

struct Header {
    tag: Tag,
    /// Present in explicit VR encoding, absent for items, delimiters and implicit VR.
    vr: Option<[u8; 2]>,
    length: u32,
}

struct Walk<'a> {
    bytes: &'a [u8],
    at: usize,
    encoding: Encoding,
    /// Where each open sequence or item ends (`usize::MAX`: at its delimiter).
    open: Vec<usize>,
    max_nesting: Option<usize>,
}

impl<'a> Walk<'a> {
    fn new(bytes: &'a [u8], at: usize, encoding: Encoding) -> Self {
        Walk {
            bytes,
            at,
            encoding,
            open: Vec::new(),
            max_nesting: None,
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn u16_at(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]])
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_le_bytes([
            self.bytes[at],
            self.bytes[at + 1],
            self.bytes[at + 2],
            self.bytes[at + 3],
        ])
    }

    fn peek_group(&self) -> Result<Option<u16>, String> {
        match self.remaining() {
            0 => Ok(None),
            1 => Err(format!("one stray byte at offset {}", self.at)),
            _ => Ok(Some(self.u16_at(self.at))),
        }
    }

    fn need(&self, n: usize, what: &str) -> Result<(), String> {
        if self.remaining() < n {
            return Err(format!(
                "truncated at offset {}: {what} needs {n} bytes, {} remain",
                self.at,
                self.remaining()
            ));
        }
        Ok(())
    }

    /// Reads one element header.
    fn next_header(&mut self) -> Result<Header, String> {
        self.need(8, "an element header")?;
        let tag = Tag(self.u16_at(self.at), self.u16_at(self.at + 2));
        let explicit = self.encoding == Encoding::ExplicitLittle || tag.group() == 0x0002;
        // Items and delimiters carry no VR in any encoding (PS3.5 §7.5).
        let (vr, length, header_len) = if tag.group() == 0xFFFE || !explicit {
            (None, self.u32_at(self.at + 4), 8)
        } else {
            let vr = [self.bytes[self.at + 4], self.bytes[self.at + 5]];
            if !is_known_vr(vr) {
                // Readers disagree on how long such a header is, so nothing after it is reliable.
                return Err(format!(
                    "element ({:04X},{:04X}) at offset {} has no valid VR ({:02X} {:02X})",
                    tag.group(),
                    tag.element(),
                    self.at,
                    vr[0],
                    vr[1]
                ));
            }
            if has_long_length(vr) {
                self.need(12, "an element header")?;
                (Some(vr), self.u32_at(self.at + 8), 12)
            } else {
                (Some(vr), u32::from(self.u16_at(self.at + 6)), 8)
            }
        };
        self.at += header_len;
        if length != UNDEFINED_LENGTH && length as usize > self.remaining() {
            return Err(format!(
                "element ({:04X},{:04X}) claims {length} bytes but only {} remain",
                tag.group(),
                tag.element(),
                self.remaining()
            ));
        }
        Ok(Header { tag, vr, length })
    }

    /// Sequences and items hold elements, whose headers are walked in turn.
    fn is_container(header: &Header) -> bool {
        match header.vr {
            Some(vr) => &vr == b"SQ",
            None if header.tag == ITEM => true,
            None if header.tag.group() == 0xFFFE => false,
            None => matches!(
                StandardDataDictionary.by_tag(header.tag).map(|e| e.vr()),
                Some(VirtualVr::Exact(VR::SQ))
            ),
        }
    }

    fn finish(mut self) -> Result<(), String> {
        if self.encoding == Encoding::Unchecked {
            return Ok(());
        }
        while self.peek_group()?.is_some() {
            let at = self.at;
            self.open.retain(|&end| end > at);
            let header = self.next_header()?;
            if header.tag == ITEM_DELIMITATION || header.tag == SEQUENCE_DELIMITATION {
                if self.open.last() == Some(&usize::MAX) {
                    self.open.pop();
                }
                continue;
            }
            if Self::is_container(&header) {
                self.open.push(match header.length {
                    UNDEFINED_LENGTH => usize::MAX,
                    length => self.at + length as usize,
                });
                if let Some(limit) = self.max_nesting {
                    if self.open.len() > limit {
                        return Err(format!(
                            "sequences nested deeper than {} levels at offset {at}",
                            limit / 2
                        ));
                    }
                }
                continue;
            }
            if header.length == UNDEFINED_LENGTH || header.tag == PIXEL_DATA {
                // Encapsulated pixel data or an undefined-length UN holds no plain elements to
                // walk; a dose report has neither, and dicom-rs reads what follows.
                return Ok(());
            }
            self.at += header.length as usize;
        }
        Ok(())
    }
}

/// VRs with a reserved field and a 4-byte length in explicit VR (PS3.5 Table 7.1-1).
fn has_long_length(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

/// The value representations of PS3.5 Table 6.2-1.
fn is_known_vr(vr: [u8; 2]) -> bool {
    has_long_length(vr)
        || matches!(
            &vr,
            b"AE"
                | b"AS"
                | b"AT"
                | b"CS"
                | b"DA"
                | b"DS"
                | b"DT"
                | b"FL"
                | b"FD"
                | b"IS"
                | b"LO"
                | b"LT"
                | b"PN"
                | b"SH"
                | b"SL"
                | b"SS"
                | b"ST"
                | b"TM"
                | b"UI"
                | b"UL"
                | b"US"
        )
}
