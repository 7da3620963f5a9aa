//! Shared text handling for the loaders: named file contents, numbered lines, quoted fields,
//! numbers, and the [`Error::Data`] constructor.

use std::borrow::Cow;
use std::path::Path;

use crate::error::{DataErrorKind, DataField, Error, Result};

/// The contents of one input file and the name used for it in error messages.
///
/// Loaders parse `SourceFile`s, so the same code reads files from disk
/// ([`SourceFile::read`]) and bytes from anywhere else ([`SourceFile::new`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    name: String,
    bytes: Vec<u8>,
}

impl SourceFile {
    /// Contents given in memory, reported in errors as `name`.
    pub fn new(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            bytes: bytes.into(),
        }
    }

    /// Reads a file; errors will name it by its path as given.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self::new(path.display().to_string(), bytes))
    }

    /// The name used in error messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw contents.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// An [`Error::Data`].
pub(crate) fn data_error(
    file: &str,
    line: usize,
    field: Option<DataField>,
    kind: DataErrorKind,
    message: impl Into<String>,
) -> Error {
    Error::Data {
        file: file.to_string(),
        line,
        field,
        kind,
        message: message.into(),
    }
}

/// One line of a file: its 1-based number and its text without the line end.
pub(crate) struct Line<'a> {
    pub number: usize,
    pub text: &'a str,
}

/// The lines of a file, 1-based, without `\n` / `\r\n` and without a leading UTF-8 byte order
/// mark. A line that is not UTF-8 is an [`DataErrorKind::Encoding`] error. The empty piece
/// after a final newline is not a line.
pub(crate) fn lines<'a>(file: &'a SourceFile) -> impl Iterator<Item = Result<Line<'a>>> + 'a {
    let bytes = file.bytes();
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let trimmed_end = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let pieces = if bytes.is_empty() {
        None
    } else {
        Some(trimmed_end.split(|&b| b == b'\n'))
    };
    pieces
        .into_iter()
        .flatten()
        .enumerate()
        .map(move |(i, raw)| {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            match std::str::from_utf8(raw) {
                Ok(text) => Ok(Line {
                    number: i + 1,
                    text,
                }),
                Err(e) => Err(data_error(
                    file.name(),
                    i + 1,
                    None,
                    DataErrorKind::Encoding,
                    format!("not valid UTF-8 (byte {} of the line)", e.valid_up_to() + 1),
                )),
            }
        })
}

/// Splits a CSV line on `delimiter`, trimming spaces around fields. A field may be quoted
/// with `"`; inside quotes the delimiter is literal and `""` stands for one `"`.
pub(crate) fn split_fields<'a>(
    text: &'a str,
    delimiter: char,
    file: &str,
    line: usize,
) -> Result<Vec<Cow<'a, str>>> {
    if !text.contains('"') {
        return Ok(text
            .split(delimiter)
            .map(|f| Cow::Borrowed(f.trim()))
            .collect());
    }
    let mut fields = Vec::new();
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        if let Some(inner) = trimmed.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = inner.char_indices();
            let after = loop {
                match chars.next() {
                    Some((i, '"')) => {
                        if inner[i + 1..].starts_with('"') {
                            value.push('"');
                            chars.next();
                        } else {
                            break &inner[i + 1..];
                        }
                    }
                    Some((_, c)) => value.push(c),
                    None => {
                        return Err(data_error(
                            file,
                            line,
                            Some(DataField::Column {
                                index: fields.len() + 1,
                                name: None,
                            }),
                            DataErrorKind::Encoding,
                            "unterminated quoted field",
                        ));
                    }
                }
            };
            fields.push(Cow::Owned(value));
            let after = after.trim_start();
            if after.is_empty() {
                return Ok(fields);
            }
            match after.strip_prefix(delimiter) {
                Some(r) => rest = r,
                None => {
                    return Err(data_error(
                        file,
                        line,
                        Some(DataField::Column {
                            index: fields.len(),
                            name: None,
                        }),
                        DataErrorKind::Encoding,
                        "text after the closing quote of a field",
                    ));
                }
            }
        } else {
            match rest.find(delimiter) {
                Some(p) => {
                    fields.push(Cow::Borrowed(rest[..p].trim()));
                    rest = &rest[p + delimiter.len_utf8()..];
                }
                None => {
                    fields.push(Cow::Borrowed(rest.trim()));
                    return Ok(fields);
                }
            }
        }
    }
}

/// A finite number, or `None`. Accepts what Rust's `f64` parser accepts (`1`, `-2.5e-3`,
/// `.5`) but not `NaN` or infinities.
pub(crate) fn parse_number(field: &str) -> Option<f64> {
    field.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Result<Vec<String>> {
        split_fields(text, ',', "t", 1).map(|v| v.into_iter().map(String::from).collect())
    }

    #[test]
    fn split_fields_handles_quotes_spaces_and_empty_fields() {
        assert_eq!(fields("a, b ,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(fields("a,,").unwrap(), ["a", "", ""]);
        assert_eq!(
            fields(r#""x, y" , "say ""hi""",z"#).unwrap(),
            ["x, y", r#"say "hi""#, "z"]
        );
        assert_eq!(fields(r#""a","#).unwrap(), ["a", ""]);
        assert_eq!(fields(r#"ab"c,d"#).unwrap(), [r#"ab"c"#, "d"]);
        assert!(fields(r#"a,"open"#).is_err());
        assert!(fields(r#""a"b,c"#).is_err());
    }

    #[test]
    fn lines_strip_bom_and_crlf_and_number_from_one() {
        let f = SourceFile::new("t", b"\xEF\xBB\xBFa\r\n\r\nb\nc".to_vec());
        let got: Vec<(usize, String)> = lines(&f)
            .map(|l| l.map(|l| (l.number, l.text.to_string())))
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            got,
            [
                (1, "a".into()),
                (2, "".into()),
                (3, "b".into()),
                (4, "c".into())
            ]
        );
        assert_eq!(lines(&SourceFile::new("t", "")).count(), 0);
        assert_eq!(lines(&SourceFile::new("t", "x\n")).count(), 1);
    }

    #[test]
    fn numbers_must_be_finite() {
        assert_eq!(parse_number("-2.5e-3"), Some(-0.0025));
        assert_eq!(parse_number(".5"), Some(0.5));
        for bad in ["", "NaN", "inf", "-infinity", "1,5", "0x10", "1e400"] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }
}
