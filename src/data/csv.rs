//! One CSV file per modality, rows in the same order, plus labels from a column or a file.

use std::borrow::Cow;

use super::text::{Line, SourceFile, data_error, lines, parse_number, split_fields};
use super::{Dataset, Modality, encode_labels};
use crate::error::{DataErrorKind, DataField, Result};

/// Whether the first non-blank line of a CSV file is a header of column names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Header {
    /// The first line is a header.
    Present,
    /// Every line is data.
    Absent,
    /// Decide per file. In a modality file, the first line is a header when one of its
    /// feature fields (not the label column) is not a number. In a label file, it is a
    /// header when its label does not occur on any other line.
    ///
    /// A header of numbers (like the column indices of `uci-mfeat`) is not detected: say
    /// [`Header::Present`].
    #[default]
    Detect,
}

/// A column of a CSV file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Column {
    /// The last column.
    Last,
    /// The column at this 0-based position.
    Index(usize),
    /// The column with this header name (the file must have a header).
    Name(String),
}

/// Where the class labels are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Labels {
    /// This column of every modality file; the files must agree on every row. The column
    /// is not a feature.
    Column(Column),
    /// This column of a separate file with one line per sample (other columns are ignored).
    File {
        /// The label file.
        file: SourceFile,
        /// Which of its columns holds the label.
        column: Column,
    },
}

/// Loads a [`Dataset`] from one CSV file per modality.
///
/// Fields are separated by a delimiter (`,` by default) and trimmed; a field may be quoted
/// with `"` (`""` inside quotes is one `"`). Lines may end in `\n` or `\r\n`; blank lines are
/// skipped. Every data row of a modality file must have as many fields as its first row, and
/// every modality file must have the same number of data rows. Feature values must be finite
/// numbers: qfl does not impute missing values.
///
/// ```
/// use qfl::data::{Column, CsvLoader, Header, Labels, SourceFile};
/// # fn main() -> qfl::Result<()> {
/// let a = SourceFile::new("a.csv", "x,y,label\n1,2,cat\n3,4,dog\n5,6,cat\n");
/// let b = SourceFile::new("b.csv", "z,label\n0.5,cat\n0.25,dog\n-1,cat\n");
/// let data = CsvLoader::new(Labels::Column(Column::Name("label".into())))
///     .with_header(Header::Present)
///     .load(&[("a", a), ("b", b)])?;
/// assert_eq!(data.class_names(), ["cat", "dog"]);
/// assert_eq!(data.labels(), [0, 1, 0]);
/// assert_eq!(data.modality(1).and_then(|m| m.row(2)), Some(&[-1.0][..]));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct CsvLoader {
    labels: Labels,
    header: Header,
    delimiter: char,
    classes: Option<Vec<String>>,
}

/// One parsed modality file: features, raw labels, and where each data row was.
struct Table<'a> {
    file: &'a SourceFile,
    header: Option<Vec<String>>,
    label_col: Option<usize>,
    n_features: usize,
    values: Vec<f64>,
    labels: Vec<Cow<'a, str>>,
    line_numbers: Vec<usize>,
}

impl CsvLoader {
    /// A loader reading labels from `labels`, detecting headers, splitting on `,`, with
    /// classes inferred from the labels.
    pub fn new(labels: Labels) -> Self {
        Self {
            labels,
            header: Header::Detect,
            delimiter: ',',
            classes: None,
        }
    }

    /// Sets the header rule for every file (modality and label files).
    pub fn with_header(mut self, header: Header) -> Self {
        self.header = header;
        self
    }

    /// Sets the field delimiter (`;`, `\t`, ...). It must not be `"` or a line end.
    pub fn with_delimiter(mut self, delimiter: char) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Declares the classes and their order: label `i` is `classes[i]`, and a label not in
    /// the list is an error. Without it, the classes are the distinct labels in numeric order
    /// when all are integers, in byte order otherwise.
    pub fn with_classes(mut self, classes: Vec<String>) -> Self {
        self.classes = Some(classes);
        self
    }

    /// Reads the files at `modalities` (`(name, path)`) and loads them.
    ///
    /// # Errors
    /// [`crate::Error::Io`] if a file cannot be read, otherwise as [`CsvLoader::load`].
    pub fn read(&self, modalities: &[(&str, &std::path::Path)]) -> Result<Dataset> {
        let files = modalities
            .iter()
            .map(|&(name, path)| Ok((name, SourceFile::read(path)?)))
            .collect::<Result<Vec<_>>>()?;
        self.load(&files)
    }

    /// Parses one file per modality (`(modality name, file)`), in the given order.
    ///
    /// # Errors
    /// [`crate::Error::Data`] naming the file, line and column for: an empty file, a
    /// non-numeric or non-finite feature value, a row with the wrong number of fields, files
    /// with different numbers of rows or (with [`Labels::Column`]) different labels on a row,
    /// a label not among the declared classes, a label column that does not exist, bytes
    /// that are not UTF-8, an unterminated quote. [`crate::Error::InvalidData`] if no
    /// modality is given or two share a name.
    pub fn load(&self, modalities: &[(&str, SourceFile)]) -> Result<Dataset> {
        let in_file = match &self.labels {
            Labels::Column(c) => Some(c),
            Labels::File { .. } => None,
        };
        let tables = modalities
            .iter()
            .map(|(_, file)| self.parse_table(file, in_file))
            .collect::<Result<Vec<_>>>()?;
        let Some(first) = tables.first() else {
            return Err(crate::Error::InvalidData {
                what: "CSV data set".into(),
                reason: "no modality file was given".into(),
            });
        };
        let n = first.line_numbers.len();
        for t in &tables[1..] {
            check_same_rows(first, t.file, &t.line_numbers, n)?;
        }
        let (raw_labels, label_lines, label_file, label_field): (
            Vec<Cow<'_, str>>,
            Vec<usize>,
            &SourceFile,
            DataField,
        ) = match &self.labels {
            Labels::Column(_) => {
                let col = first.label_col.unwrap_or(0);
                for t in &tables[1..] {
                    let tcol = t.label_col.unwrap_or(0);
                    for (r, (a, b)) in first.labels.iter().zip(&t.labels).enumerate() {
                        if a != b {
                            return Err(data_error(
                                t.file.name(),
                                t.line_numbers[r],
                                Some(column_field(tcol, &t.header)),
                                DataErrorKind::RowMismatch,
                                format!(
                                    "label {b:?} differs from {a:?} on line {} of {}",
                                    first.line_numbers[r],
                                    first.file.name()
                                ),
                            ));
                        }
                    }
                }
                (
                    first.labels.clone(),
                    first.line_numbers.clone(),
                    first.file,
                    column_field(col, &first.header),
                )
            }
            Labels::File { file, column } => {
                let (labels, line_numbers, field) = self.parse_label_file(file, column)?;
                check_same_rows(first, file, &line_numbers, n)?;
                (labels, line_numbers, file, field)
            }
        };
        let raw: Vec<&str> = raw_labels.iter().map(|s| s.as_ref()).collect();
        let (labels, class_names) =
            encode_labels(&raw, self.classes.as_deref(), |i, kind, msg| {
                data_error(
                    label_file.name(),
                    label_lines[i],
                    Some(label_field.clone()),
                    kind,
                    msg,
                )
            })?;
        let modalities = modalities
            .iter()
            .zip(tables)
            .map(|((name, _), t)| Modality::new(*name, t.n_features, t.values))
            .collect::<Result<Vec<_>>>()?;
        Dataset::new(modalities, labels, class_names)
    }

    /// The data lines of a file split into fields, with the header (if any) separated.
    #[allow(clippy::type_complexity)]
    fn split_lines<'a>(&self, file: &'a SourceFile) -> Result<Vec<(usize, Vec<Cow<'a, str>>)>> {
        let mut rows = Vec::new();
        for line in lines(file) {
            let Line { number, text } = line?;
            if text.trim().is_empty() {
                continue;
            }
            rows.push((
                number,
                split_fields(text, self.delimiter, file.name(), number)?,
            ));
        }
        if rows.is_empty() {
            return Err(data_error(
                file.name(),
                0,
                None,
                DataErrorKind::Empty,
                "the file has no lines",
            ));
        }
        Ok(rows)
    }

    fn parse_table<'a>(&self, file: &'a SourceFile, label: Option<&Column>) -> Result<Table<'a>> {
        let mut rows = self.split_lines(file)?.into_iter().peekable();
        let Some((first_line, first)) = rows.peek().cloned() else {
            return Err(data_error(
                file.name(),
                0,
                None,
                DataErrorKind::Empty,
                "the file has no lines",
            ));
        };
        let width = first.len();
        let label_col = match label {
            None => None,
            Some(c) => Some(resolve_column(c, &first, self.header, file, first_line)?),
        };
        let is_feature = |j: usize| Some(j) != label_col;
        let has_header = match (self.header, label) {
            (Header::Present, _) | (_, Some(Column::Name(_))) => true,
            (Header::Absent, _) => false,
            (Header::Detect, _) => first
                .iter()
                .enumerate()
                .any(|(j, f)| is_feature(j) && parse_number(f).is_none()),
        };
        let header = if has_header {
            rows.next();
            Some(first.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        } else {
            None
        };
        let n_features = width - usize::from(label_col.is_some());
        if n_features == 0 {
            return Err(data_error(
                file.name(),
                first_line,
                None,
                DataErrorKind::Header,
                "the file has no feature column",
            ));
        }
        let mut table = Table {
            file,
            header,
            label_col,
            n_features,
            values: Vec::new(),
            labels: Vec::new(),
            line_numbers: Vec::new(),
        };
        for (number, fields) in rows {
            if fields.len() != width {
                return Err(data_error(
                    file.name(),
                    number,
                    Some(column_field(fields.len().min(width), &table.header)),
                    DataErrorKind::FieldCount,
                    format!("{} fields, but line {first_line} has {width}", fields.len()),
                ));
            }
            for (j, f) in fields.into_iter().enumerate() {
                if Some(j) == label_col {
                    table.labels.push(f);
                } else if let Some(v) = parse_number(&f) {
                    table.values.push(v);
                } else {
                    return Err(data_error(
                        file.name(),
                        number,
                        Some(column_field(j, &table.header)),
                        DataErrorKind::NotANumber,
                        format!("{f:?} is not a finite number"),
                    ));
                }
            }
            table.line_numbers.push(number);
        }
        if table.line_numbers.is_empty() {
            return Err(data_error(
                file.name(),
                0,
                None,
                DataErrorKind::Empty,
                "the file has a header but no data rows",
            ));
        }
        Ok(table)
    }

    /// The labels of a label file, their line numbers, and the label field.
    #[allow(clippy::type_complexity)]
    fn parse_label_file<'a>(
        &self,
        file: &'a SourceFile,
        column: &Column,
    ) -> Result<(Vec<Cow<'a, str>>, Vec<usize>, DataField)> {
        let rows = self.split_lines(file)?;
        let (first_line, first) = &rows[0];
        let width = first.len();
        let col = resolve_column(column, first, self.header, file, *first_line)?;
        for (number, fields) in &rows {
            if fields.len() != width {
                return Err(data_error(
                    file.name(),
                    *number,
                    Some(column_field(fields.len().min(width), &None)),
                    DataErrorKind::FieldCount,
                    format!("{} fields, but line {first_line} has {width}", fields.len()),
                ));
            }
        }
        let has_header = match (self.header, column) {
            (Header::Present, _) | (_, Column::Name(_)) => true,
            (Header::Absent, _) => false,
            (Header::Detect, _) => rows[1..].iter().all(|(_, f)| f[col] != first[col]),
        };
        let header = has_header.then(|| first.iter().map(|s| s.to_string()).collect());
        let field = column_field(col, &header);
        let data = &rows[usize::from(has_header)..];
        if data.is_empty() {
            return Err(data_error(
                file.name(),
                0,
                None,
                DataErrorKind::Empty,
                "the file has a header but no data rows",
            ));
        }
        Ok((
            data.iter().map(|(_, f)| f[col].clone()).collect(),
            data.iter().map(|(n, _)| *n).collect(),
            field,
        ))
    }
}

/// A 0-based column as a 1-based [`DataField`], with its header name if known.
fn column_field(j: usize, header: &Option<Vec<String>>) -> DataField {
    DataField::Column {
        index: j + 1,
        name: header.as_ref().and_then(|h| h.get(j).cloned()),
    }
}

/// The 0-based index of `column` in a file whose first row is `first`.
fn resolve_column(
    column: &Column,
    first: &[Cow<'_, str>],
    header: Header,
    file: &SourceFile,
    line: usize,
) -> Result<usize> {
    let width = first.len();
    let missing = |msg: String| data_error(file.name(), line, None, DataErrorKind::Header, msg);
    match column {
        Column::Last => Ok(width - 1),
        Column::Index(i) if *i < width => Ok(*i),
        Column::Index(i) => Err(missing(format!(
            "label column {} does not exist: the line has {width} fields",
            i + 1
        ))),
        Column::Name(_) if header == Header::Absent => Err(missing(
            "a label column given by name needs a header, but the loader says there is none".into(),
        )),
        Column::Name(name) => first
            .iter()
            .position(|f| f == name)
            .ok_or_else(|| missing(format!("no column is named {name:?} in the header"))),
    }
}

/// Checks that `file` has `n` data rows like `first`.
fn check_same_rows(
    first: &Table<'_>,
    file: &SourceFile,
    line_numbers: &[usize],
    n: usize,
) -> Result<()> {
    let m = line_numbers.len();
    if m == n {
        return Ok(());
    }
    // Point at the first row that has no counterpart, in whichever file is longer.
    let (longer, line, shorter, count) = if m > n {
        (file.name(), line_numbers[n], first.file.name(), n)
    } else {
        (first.file.name(), first.line_numbers[m], file.name(), m)
    };
    Err(data_error(
        longer,
        line,
        None,
        DataErrorKind::RowMismatch,
        format!(
            "data row {} has no counterpart: {shorter} has {count} data rows",
            count + 1
        ),
    ))
}
