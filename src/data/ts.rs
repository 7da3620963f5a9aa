//! The UEA/sktime `.ts` time-series format.

use super::text::{SourceFile, data_error, lines};
use super::{Dataset, Modality, encode_labels};
use crate::error::{DataErrorKind, DataField, Error, Result};

impl Dataset {
    /// Parses a UEA/sktime `.ts` file: each channel (dimension) becomes one modality named
    /// `dim_0`, `dim_1`, ... whose features are its time steps.
    ///
    /// The format: `#` comment lines; `@` header lines (`@problemName`, `@timeStamps false`,
    /// `@missing`, `@univariate`, `@dimensions N`, `@equalLength`, `@seriesLength N`,
    /// `@classLabel true A B C`); then `@data` and one sample per line, channels separated by
    /// `:`, values within a channel by `,`, the class label last. Blank lines are skipped.
    ///
    /// With `@classLabel true ...` the classes are the listed names in that order; without a
    /// `@classLabel` line they are inferred as for CSV files (numeric order for integers,
    /// byte order otherwise).
    ///
    /// Not supported, and reported as errors: time stamps, regression targets
    /// (`@classLabel false`, `@targetLabel`), missing values (`?` or `NaN`; impute them
    /// before loading), series of unequal lengths.
    ///
    /// ```
    /// use qfl::data::SourceFile;
    /// use qfl::Dataset;
    /// # fn main() -> qfl::Result<()> {
    /// let text = "@classLabel true up down\n@data\n1,2,3:4,5,6:up\n0,0,0:1,1,1:down\n";
    /// let data = Dataset::from_ts(&SourceFile::new("toy.ts", text))?;
    /// assert_eq!((data.n_samples(), data.n_modalities()), (2, 2));
    /// assert_eq!(data.modality(1).and_then(|m| m.row(0)), Some(&[4.0, 5.0, 6.0][..]));
    /// assert_eq!(data.labels(), [0, 1]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Data`] naming the file, line and field (channel and step, or class label)
    /// for: an empty file, no `@data` line, an unknown or malformed header, a value that is
    /// not a number, a missing value, a sample with a different number of channels or steps,
    /// a class label not in `@classLabel`, bytes that are not UTF-8.
    pub fn from_ts(file: &SourceFile) -> Result<Self> {
        parse(file)
    }

    /// Reads and parses a `.ts` file (see [`Dataset::from_ts`]).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, otherwise as [`Dataset::from_ts`].
    pub fn read_ts(path: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::from_ts(&SourceFile::read(path)?)
    }
}

/// Header facts that the data lines are checked against.
#[derive(Default)]
struct TsHeader {
    dimensions: Option<(usize, usize)>,
    series_length: Option<(usize, usize)>,
    classes: Option<Vec<String>>,
}

fn parse(file: &SourceFile) -> Result<Dataset> {
    let name = file.name();
    let err = |line: usize, field: Option<DataField>, kind: DataErrorKind, msg: String| {
        data_error(name, line, field, kind, msg)
    };
    let header_err = |line: usize, msg: String| err(line, None, DataErrorKind::Header, msg);
    let mut header = TsHeader::default();
    let mut in_data = false;
    let mut last_line = 0;
    // Per sample: channel values (one Vec per channel), label, line.
    let mut channels: Vec<Vec<f64>> = Vec::new();
    let mut n_channels = 0;
    let mut length = 0;
    let mut raw_labels: Vec<&str> = Vec::new();
    let mut label_lines: Vec<usize> = Vec::new();
    for line in lines(file) {
        let line = line?;
        let (number, text) = (line.number, line.text.trim());
        last_line = number;
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if !in_data {
            let Some(tag_line) = text.strip_prefix('@') else {
                return Err(header_err(
                    number,
                    "expected a '#' comment or an '@' header line before @data".into(),
                ));
            };
            let mut words = tag_line.split_whitespace();
            let tag = words.next().unwrap_or("").to_ascii_lowercase();
            let rest: Vec<&str> = words.collect();
            let flag = |rest: &[&str]| match rest {
                [w] if w.eq_ignore_ascii_case("true") => Ok(true),
                [w] if w.eq_ignore_ascii_case("false") => Ok(false),
                _ => Err(header_err(number, format!("@{tag} needs true or false"))),
            };
            let count = |rest: &[&str]| match rest {
                [w] => w.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                    header_err(
                        number,
                        format!("@{tag} needs a positive integer, got {w:?}"),
                    )
                }),
                _ => Err(header_err(
                    number,
                    format!("@{tag} needs one positive integer"),
                )),
            };
            match tag.as_str() {
                "problemname" => {}
                "missing" | "univariate" | "equallength" => {
                    flag(&rest)?;
                }
                "timestamps" => {
                    if flag(&rest)? {
                        return Err(header_err(number, "time stamps are not supported".into()));
                    }
                }
                "dimensions" => header.dimensions = Some((count(&rest)?, number)),
                "serieslength" => header.series_length = Some((count(&rest)?, number)),
                "classlabel" => match rest.split_first() {
                    Some((w, names)) if w.eq_ignore_ascii_case("true") => {
                        if names.is_empty() {
                            return Err(header_err(
                                number,
                                "@classLabel true lists no class".into(),
                            ));
                        }
                        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
                        if let Some(dup) = names
                            .iter()
                            .enumerate()
                            .find(|(i, n)| names[..*i].contains(n))
                        {
                            return Err(header_err(
                                number,
                                format!("class {:?} is listed twice", dup.1),
                            ));
                        }
                        header.classes = Some(names);
                    }
                    _ => {
                        return Err(header_err(
                            number,
                            "only classification files are supported: expected @classLabel true <classes>".into(),
                        ));
                    }
                },
                "targetlabel" => {
                    return Err(header_err(
                        number,
                        "regression targets are not supported".into(),
                    ));
                }
                "data" => in_data = true,
                _ => return Err(header_err(number, format!("unknown header @{tag}"))),
            }
            continue;
        }
        let mut parts: Vec<&str> = text.split(':').collect();
        let label = parts.pop().unwrap_or("").trim();
        if parts.is_empty() {
            return Err(err(
                number,
                None,
                DataErrorKind::FieldCount,
                "a sample needs channels and a class label separated by ':'".into(),
            ));
        }
        if label.is_empty() {
            return Err(err(
                number,
                Some(DataField::ClassLabel),
                DataErrorKind::Header,
                "empty class label".into(),
            ));
        }
        if raw_labels.is_empty() {
            n_channels = parts.len();
            if let Some((d, at)) = header.dimensions
                && d != n_channels
            {
                return Err(err(
                    number,
                    None,
                    DataErrorKind::FieldCount,
                    format!("{n_channels} channels, but @dimensions on line {at} says {d}"),
                ));
            }
            channels = vec![Vec::new(); n_channels];
        } else if parts.len() != n_channels {
            return Err(err(
                number,
                Some(DataField::Channel {
                    channel: parts.len().min(n_channels) + 1,
                    step: None,
                }),
                DataErrorKind::FieldCount,
                format!(
                    "{} channels, but line {} has {n_channels}",
                    parts.len(),
                    label_lines[0]
                ),
            ));
        }
        for (c, part) in parts.iter().enumerate() {
            let before = channels[c].len();
            for (s, v) in part.split(',').enumerate() {
                let v = v.trim();
                let field = || {
                    Some(DataField::Channel {
                        channel: c + 1,
                        step: Some(s + 1),
                    })
                };
                match v.parse::<f64>() {
                    Ok(x) if x.is_finite() => channels[c].push(x),
                    Ok(x) if x.is_nan() => {
                        return Err(err(
                            number,
                            field(),
                            DataErrorKind::Missing,
                            "missing value (NaN); impute before loading".into(),
                        ));
                    }
                    _ if v == "?" => {
                        return Err(err(
                            number,
                            field(),
                            DataErrorKind::Missing,
                            "missing value '?'; impute before loading".into(),
                        ));
                    }
                    _ => {
                        return Err(err(
                            number,
                            field(),
                            DataErrorKind::NotANumber,
                            format!("{v:?} is not a finite number"),
                        ));
                    }
                }
            }
            let len = channels[c].len() - before;
            if raw_labels.is_empty() && c == 0 {
                length = len;
                if let Some((l, at)) = header.series_length
                    && l != length
                {
                    return Err(err(
                        number,
                        Some(DataField::Channel {
                            channel: 1,
                            step: None,
                        }),
                        DataErrorKind::UnequalLength,
                        format!("{length} steps, but @seriesLength on line {at} says {l}"),
                    ));
                }
            } else if len != length {
                return Err(err(
                    number,
                    Some(DataField::Channel {
                        channel: c + 1,
                        step: None,
                    }),
                    DataErrorKind::UnequalLength,
                    format!(
                        "{len} steps, but channel 1 of line {} has {length}; unequal lengths are not supported",
                        label_lines.first().copied().unwrap_or(number)
                    ),
                ));
            }
        }
        raw_labels.push(label);
        label_lines.push(number);
    }
    if last_line == 0 {
        return Err(err(
            0,
            None,
            DataErrorKind::Empty,
            "the file has no lines".into(),
        ));
    }
    if !in_data {
        return Err(header_err(last_line, "no @data line".into()));
    }
    if raw_labels.is_empty() {
        return Err(err(
            0,
            None,
            DataErrorKind::Empty,
            "no sample after @data".into(),
        ));
    }
    let (labels, class_names) =
        encode_labels(&raw_labels, header.classes.as_deref(), |i, kind, msg| {
            data_error(name, label_lines[i], Some(DataField::ClassLabel), kind, msg)
        })?;
    let modalities = channels
        .into_iter()
        .enumerate()
        .map(|(c, values)| Modality::new(format!("dim_{c}"), length, values))
        .collect::<Result<Vec<_>, Error>>()?;
    Dataset::new(modalities, labels, class_names)
}
