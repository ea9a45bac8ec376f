//! Lists come in pages: a stable order (a sort key, then the row's id), a cursor that names the
//! last row given, and the total the filter matches — so a list never drops rows without a word.
//! Keyset paging: a row added or changed between pages does not shift the next page.

/// One page of a list: its rows, the cursor of the next page (none: this was the last), and how
/// many rows the filter matches in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
    pub total: u64,
}

impl<T> Page<T> {
    /// Whether rows follow this page.
    pub fn has_more(&self) -> bool {
        self.next.is_some()
    }
}

/// Where a page ends: the last row's sort key and id, as hex text. Any even-length hex names a
/// position in the order (what follows it), so a made-up cursor is harmless; the `next` link
/// gives the exact one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    key: String,
    id: String,
}

// Ids (UUIDs, DICOM UIDs) never contain it; a key that does is split at the last one.
const SEPARATOR: char = '|';

impl Cursor {
    /// Reads a cursor a list gave out; anything else is refused with the reason.
    pub fn parse(text: &str) -> Result<Cursor, String> {
        let refuse = || "not a cursor this list gave out: use the `next` link as given".to_string();
        // Hex digits only, checked before slicing: a multi-byte character must not split.
        if text.len() > 1024
            || !text.len().is_multiple_of(2)
            || !text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(refuse());
        }
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| refuse())?;
        let decoded = String::from_utf8_lossy(&bytes);
        let (key, id) = decoded.rsplit_once(SEPARATOR).unwrap_or((&decoded, ""));
        Ok(Cursor {
            key: key.to_string(),
            id: id.to_string(),
        })
    }

    /// A cursor after the row with this sort key and id (for a list paged in memory).
    pub fn new(key: impl Into<String>, id: impl Into<String>) -> Cursor {
        Cursor {
            key: key.into(),
            id: id.into(),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn as_text(&self) -> String {
        format!("{}{SEPARATOR}{}", self.key, self.id)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// What a paged list reads: the tables, the columns besides the page key, its order, and the
/// conditions with their bound values.
pub(crate) struct PagedQuery<'a> {
    pub from: &'a str,
    pub columns: &'a str,
    pub order: Order<'a>,
    pub conditions: Vec<String>,
    pub params: Vec<String>,
}

/// How a list is ordered: a sort key expression and the id column, ascending or descending.
/// Both are text, or both whole numbers (`numeric`: the cursor's values are cast back to them).
pub(crate) struct Order<'a> {
    pub key: &'a str,
    pub id: &'a str,
    pub descending: bool,
    pub numeric: bool,
}

impl Order<'_> {
    /// The condition "after the cursor", binding its values after `params`.
    pub fn after(&self, cursor: Option<&Cursor>, params: &mut Vec<String>) -> Option<String> {
        let cursor = cursor?;
        let value = |v: &str| {
            if !self.numeric {
                return v.to_string();
            }
            // A made-up cursor that is not a number is past the end: an empty page, not an error.
            let end = if self.descending { i64::MIN } else { i64::MAX };
            v.parse::<i64>().unwrap_or(end).to_string()
        };
        params.push(value(&cursor.key));
        let k = params.len();
        params.push(value(&cursor.id));
        let i = params.len();
        let op = if self.descending { "<" } else { ">" };
        let (k, i) = if self.numeric {
            (
                format!("CAST(${k} AS BIGINT)"),
                format!("CAST(${i} AS BIGINT)"),
            )
        } else {
            (format!("${k}"), format!("${i}"))
        };
        Some(format!(
            "(({key}) {op} {k} OR (({key}) = {k} AND {id} {op} {i}))",
            key = self.key,
            id = self.id
        ))
    }

    pub fn by(&self) -> String {
        let dir = if self.descending { "DESC" } else { "ASC" };
        format!("({}) {dir}, {} {dir}", self.key, self.id)
    }

    /// The columns a paged query selects besides its data, to build the next cursor.
    pub fn select(&self) -> String {
        if self.numeric {
            format!(
                "CAST(({}) AS TEXT) AS page_key, CAST({} AS TEXT) AS page_id",
                self.key, self.id
            )
        } else {
            format!("({}) AS page_key, {} AS page_id", self.key, self.id)
        }
    }
}

impl crate::Store {
    /// Runs a paged query: the rows after `after` in its order, one more than `limit` to know
    /// whether more follow, and the count of all rows its conditions match — counted only when
    /// the page does not already tell it (a first page that holds every row).
    pub(crate) async fn page<T>(
        &self,
        query: PagedQuery<'_>,
        after: Option<&Cursor>,
        limit: usize,
        decode: impl Fn(&[sqlx::any::AnyRow]) -> Result<Vec<T>, crate::StoreError>,
    ) -> Result<Page<T>, crate::StoreError> {
        use crate::{fetch_with_text_params, where_clause};
        use sqlx::Row;
        let PagedQuery {
            from,
            columns,
            order,
            conditions,
            params,
        } = query;
        let mut conn = self.conn().await?;
        let mut paged_params = params.clone();
        let mut paged = conditions.clone();
        paged.extend(order.after(after, &mut paged_params));
        let sql = format!(
            "SELECT {columns}, {} FROM {from} {} ORDER BY {} LIMIT {}",
            order.select(),
            where_clause(&paged),
            order.by(),
            limit + 1
        );
        let rows = fetch_with_text_params(&mut conn, &sql, &paged_params).await?;
        let next = next_cursor(&rows, limit)?;
        let total = if after.is_none() && next.is_none() {
            rows.len() as u64
        } else {
            let count_sql = format!(
                "SELECT COUNT(*) AS n FROM {from} {}",
                where_clause(&conditions)
            );
            fetch_with_text_params(&mut conn, &count_sql, &params)
                .await?
                .first()
                .map(|r| r.try_get::<i64, _>("n"))
                .transpose()?
                .unwrap_or(0)
                .max(0) as u64
        };
        let mut items = decode(&rows)?;
        items.truncate(limit);
        Ok(Page { items, next, total })
    }
}

/// The next cursor from the last row of a page, when the query found more than `limit` rows.
fn next_cursor(
    rows: &[sqlx::any::AnyRow],
    limit: usize,
) -> Result<Option<Cursor>, crate::StoreError> {
    use sqlx::Row;
    if rows.len() <= limit || limit == 0 {
        return Ok(None);
    }
    let last = &rows[limit - 1];
    Ok(Some(Cursor {
        key: last.try_get::<String, _>("page_key")?,
        id: last.try_get::<String, _>("page_id")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_only_malformed_hex_is_refused() {
        let c = Cursor {
            key: "02026-11-24T09:00:00.000000Z".into(),
            id: "7f0c9a52".into(),
        };
        assert_eq!(Cursor::parse(&c.as_text()), Ok(c));
        // Any hex is a position: "hi" is the point after the key "hi".
        assert_eq!(
            Cursor::parse("6869"),
            Ok(Cursor {
                key: "hi".into(),
                id: String::new()
            })
        );
        // A multi-byte character of even byte length once split a slice and panicked.
        for bad in [
            "zz",
            "abc",
            &"a".repeat(2000),
            "\u{1920d}",
            "\u{89fa1}\u{b9}",
            "\u{e9}",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }
}
