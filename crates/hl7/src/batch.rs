//! HL7 batch files (HL7 v2 §2.10.3: FHS, BHS … messages … BTS, FTS) and plain files of messages
//! one after another, split into messages. Works on bytes: each message declares its own
//! character set. Line ends may be CR, LF or CRLF; MLLP frame bytes are ignored.

/// The messages of a file, and what did not add up.
#[derive(Debug, Default)]
pub struct Batch {
    pub messages: Vec<Vec<u8>>,
    /// E.g. a batch trailer whose count differs from the messages found.
    pub warnings: Vec<String>,
}

/// Splits a file into messages (segments joined with CR). A segment before the first MSH that
/// is not a batch header is an error naming its line.
pub fn split(bytes: &[u8]) -> Result<Batch, String> {
    let mut batch = Batch::default();
    let mut current: Option<Vec<u8>> = None;
    let mut in_batch = 0usize;
    let mut batches_closed = 0usize;
    let cleaned: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|&b| b != 0x0B && b != 0x1C)
        .collect();
    let lines = cleaned.split(|&b| b == b'\r' || b == b'\n');
    for (index, line) in lines.enumerate() {
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let name = line.get(..3).unwrap_or(line);
        match name {
            b"MSH" => {
                if let Some(message) = current.take() {
                    batch.messages.push(message);
                }
                in_batch += 1;
                current = Some(line.to_vec());
            }
            b"FHS" | b"BHS" => {
                if let Some(message) = current.take() {
                    batch.messages.push(message);
                }
                in_batch = 0;
            }
            b"BTS" | b"FTS" => {
                if let Some(message) = current.take() {
                    batch.messages.push(message);
                }
                let declared = count_of(line);
                if name == b"BTS" {
                    batches_closed += 1;
                    if let Some(declared) = declared.filter(|&d| d != in_batch) {
                        batch.warnings.push(format!(
                            "line {}: the batch trailer counts {declared} messages; {in_batch} were found",
                            index + 1
                        ));
                    }
                } else if let Some(declared) = declared.filter(|&d| d != batches_closed) {
                    batch.warnings.push(format!(
                        "line {}: the file trailer counts {declared} batches; {batches_closed} were found",
                        index + 1
                    ));
                }
            }
            _ => match current.as_mut() {
                Some(message) => {
                    message.push(b'\r');
                    message.extend_from_slice(line);
                }
                None => {
                    return Err(format!(
                        "line {}: a segment outside a message ({}); a message starts with MSH",
                        index + 1,
                        String::from_utf8_lossy(&line[..line.len().min(20)])
                    ))
                }
            },
        }
    }
    if let Some(message) = current.take() {
        batch.messages.push(message);
    }
    for message in &mut batch.messages {
        message.push(b'\r');
    }
    Ok(batch)
}

/// BTS-1 / FTS-1: the count a trailer declares.
fn count_of(line: &[u8]) -> Option<usize> {
    let separator = *line.get(3)?;
    let field = line.split(|&b| b == separator).nth(1)?;
    std::str::from_utf8(field).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_file_splits_into_its_messages_and_a_wrong_count_is_said() {
        let file = b"FHS|^~\\&|LAB|GENHOSP\nBHS|^~\\&|LAB|GENHOSP\r\nMSH|^~\\&|LAB|GENHOSP|||1||ORU^R01|1|P|2.5.1\nPID|1||A\n\nMSH|^~\\&|LAB|GENHOSP|||1||ORU^R01|2|P|2.5.1\rPID|1||B\rBTS|3\nFTS|1\n";
        let batch = split(file).unwrap();
        assert_eq!(batch.messages.len(), 2);
        assert_eq!(
            batch.messages[1],
            b"MSH|^~\\&|LAB|GENHOSP|||1||ORU^R01|2|P|2.5.1\rPID|1||B\r"
        );
        assert_eq!(batch.warnings.len(), 1, "{:?}", batch.warnings);
        assert!(batch.warnings[0].contains("counts 3"));
        assert!(split(b"PID|1||A\nMSH|^~\\&|X\n")
            .unwrap_err()
            .contains("line 1"));
    }
}
