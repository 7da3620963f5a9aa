//! The one public error type of the crate and its `Result` alias.
//!
//! Every variant names what is wrong and where, with structured fields, so a caller can
//! match on it and a person can act on its message. Input a user can type never panics:
//! it comes back as one of these.

use thiserror::Error;

/// Which binding a [`crate::Param`] reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamSource {
    /// Trainable parameters `theta`.
    Theta,
    /// Input features `x`.
    Input,
}

impl std::fmt::Display for ParamSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamSource::Theta => f.write_str("trainable parameter (theta)"),
            ParamSource::Input => f.write_str("input feature (x)"),
        }
    }
}

/// What kind of problem an OpenQASM source has (see [`Error::Qasm`]).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QasmErrorKind {
    /// The text does not follow the grammar (or cannot be tokenized).
    Syntax,
    /// A register that was never declared.
    UndeclaredRegister,
    /// A gate that was never defined.
    UndeclaredGate,
    /// An identifier in an expression that is not a parameter of the enclosing gate.
    UndeclaredParameter,
    /// A gate called with the wrong number of qubit arguments.
    WrongArgumentCount,
    /// A gate called with the wrong number of angle parameters.
    WrongParameterCount,
    /// A register index beyond the register size.
    IndexOutOfRange,
    /// Registers of different sizes broadcast together.
    SizeMismatch,
    /// The same qubit twice in one gate, or a duplicate name in a gate signature.
    RepeatedQubit,
    /// A name declared twice.
    Redefinition,
    /// An `opaque` gate was used: it has no definition to simulate.
    Opaque,
    /// A value that is not allowed: a non-finite angle, a zero size, an integer too large.
    InvalidValue,
    /// An include that cannot be read.
    Include,
    /// Valid syntax that qfl does not support (an OpenQASM version other than 2).
    Unsupported,
    /// A limit on nesting, recursion or program size was exceeded.
    Limit,
}

/// What kind of problem a data file has (see [`Error::Data`]).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataErrorKind {
    /// The file has no data rows.
    Empty,
    /// A field that should be a number is not one (or is not finite).
    NotANumber,
    /// A row has a different number of fields than the first row.
    FieldCount,
    /// Modality files disagree: a different number of rows, or different labels on one row.
    RowMismatch,
    /// A class label that is not in the declared list of classes.
    UnknownClass,
    /// A missing value (`?` or `NaN` in a `.ts` file); qfl does not impute.
    Missing,
    /// Series of different lengths within a `.ts` file.
    UnequalLength,
    /// A malformed header: an unknown or malformed `@` line, a missing `@data`, a label
    /// column that does not exist.
    Header,
    /// Bytes that are not text: invalid UTF-8, an unterminated quote.
    Encoding,
}

/// Which field of a data file line an [`Error::Data`] points at.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DataField {
    /// A CSV column, 1-based, with its header name when the file has a header.
    Column {
        /// 1-based column number.
        index: usize,
        /// Header name of the column, if any.
        name: Option<String>,
    },
    /// A value of a `.ts` series: 1-based channel and, when known, 1-based time step.
    Channel {
        /// 1-based channel (dimension) number.
        channel: usize,
        /// 1-based time step, if the problem is one value.
        step: Option<usize>,
    },
    /// The class label of a `.ts` line.
    ClassLabel,
}

impl std::fmt::Display for DataField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataField::Column { index, name: None } => write!(f, "column {index}"),
            DataField::Column {
                index,
                name: Some(name),
            } => write!(f, "column {index} ({name:?})"),
            DataField::Channel {
                channel,
                step: None,
            } => write!(f, "channel {channel}"),
            DataField::Channel {
                channel,
                step: Some(step),
            } => write!(f, "channel {channel}, step {step}"),
            DataField::ClassLabel => f.write_str("class label"),
        }
    }
}

/// `file:line: field: ` prefix of an [`Error::Data`] message (line 0 = the whole file).
fn data_location(file: &str, line: usize, field: &Option<DataField>) -> String {
    let mut s = file.to_string();
    if line != 0 {
        s.push_str(&format!(":{line}"));
    }
    if let Some(field) = field {
        s.push_str(&format!(": {field}"));
    }
    s
}

/// Everything that can go wrong in qfl.
#[non_exhaustive]
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A circuit or state must have at least one qubit.
    #[error("a circuit or state needs at least one qubit, got 0")]
    NoQubits,

    /// A gate or observable names a qubit the register does not have.
    #[error("qubit {qubit} is out of range for a register of {n_qubits} qubits")]
    QubitOutOfRange {
        /// The offending qubit index.
        qubit: usize,
        /// Size of the register.
        n_qubits: usize,
    },

    /// The same qubit appears twice in one gate or Pauli string.
    #[error("qubit {qubit} appears more than once in {context}")]
    RepeatedQubit {
        /// The repeated qubit.
        qubit: usize,
        /// The gate name or "Pauli string".
        context: String,
    },

    /// A gate was given the wrong number of qubits.
    #[error("gate {gate} acts on {expected} qubit(s) but {got} were given")]
    WrongArity {
        /// Gate name.
        gate: &'static str,
        /// Number of qubits the gate acts on.
        expected: usize,
        /// Number given.
        got: usize,
    },

    /// An angle, scale or offset is NaN or infinite.
    #[error("non-finite angle in gate {gate}: {what} = {value}")]
    NonFiniteAngle {
        /// Gate name.
        gate: &'static str,
        /// Which part of the angle ("value", "scale", "offset", "bound value").
        what: &'static str,
        /// The value found.
        value: f64,
    },

    /// A user-supplied gate matrix is not unitary (or has the wrong size or non-finite entries).
    #[error(
        "matrix for a {n_qubits}-qubit gate is not unitary: max |U^dagger U - I| = {deviation:.3e} (tolerance {tolerance:.1e})"
    )]
    NotUnitary {
        /// 1 or 2.
        n_qubits: usize,
        /// Largest entry of `U^dagger U - I` (infinite if an entry is not finite).
        deviation: f64,
        /// Tolerance used.
        tolerance: f64,
    },

    /// A matrix has the wrong number of entries.
    #[error("a {n_qubits}-qubit gate matrix needs {expected} entries, got {got}")]
    MatrixShape {
        /// Number of qubits the matrix should act on.
        n_qubits: usize,
        /// Entries needed.
        expected: usize,
        /// Entries given.
        got: usize,
    },

    /// A parameter index is beyond what the circuit declares.
    #[error("{kind} index {index} is out of range: the circuit declares {declared}")]
    ParamIndexOutOfRange {
        /// Theta or input.
        kind: ParamSource,
        /// The index used.
        index: usize,
        /// How many the circuit declares.
        declared: usize,
    },

    /// The slice bound at run time does not have the length the circuit declares.
    #[error("circuit declares {expected} {kind}s but {got} values were bound")]
    BindingLength {
        /// Theta or input.
        kind: ParamSource,
        /// Declared count.
        expected: usize,
        /// Length of the slice given.
        got: usize,
    },

    /// A bound value is NaN or infinite.
    #[error("bound {kind} {index} is not finite: {value}")]
    NonFiniteBinding {
        /// Theta or input.
        kind: ParamSource,
        /// Index in the slice.
        index: usize,
        /// The value found.
        value: f64,
    },

    /// A circuit was run on a state of a different size.
    #[error("circuit has {circuit} qubits but the state has {state}")]
    QubitCountMismatch {
        /// Circuit width.
        circuit: usize,
        /// State width.
        state: usize,
    },

    /// A dense state of this size would not fit in memory.
    #[error(
        "a dense state of {n_qubits} qubits needs {bytes_needed} bytes but only {bytes_available} are available; use the MPS backend"
    )]
    StateTooLarge {
        /// Requested qubits.
        n_qubits: usize,
        /// Bytes the amplitudes would take.
        bytes_needed: u128,
        /// Bytes the limit allows.
        bytes_available: u128,
    },

    /// An operation that builds something exponential in the qubit count was asked for too many qubits.
    #[error("{what} over {n_qubits} qubits is too large (limit {max})")]
    TooLarge {
        /// The operation ("to_dense", "marginal distribution").
        what: &'static str,
        /// Qubits asked for.
        n_qubits: usize,
        /// Largest allowed.
        max: usize,
    },

    /// Invalid truncation or backend settings.
    #[error("invalid setting {name} = {value}: {reason}")]
    InvalidSetting {
        /// Setting name.
        name: &'static str,
        /// Value given, as text.
        value: String,
        /// What is allowed.
        reason: &'static str,
    },

    /// A bit string of the wrong length.
    #[error("bit string has {got} bits but the state has {expected} qubits")]
    BitStringLength {
        /// Expected number of bits.
        expected: usize,
        /// Given number of bits.
        got: usize,
    },

    /// Text that should be a bit string or Pauli string could not be parsed.
    #[error("cannot parse {what} {text:?}: {reason}")]
    Parse {
        /// What was being parsed.
        what: &'static str,
        /// The text.
        text: String,
        /// What is wrong.
        reason: String,
    },

    /// A number became NaN or infinite during simulation.
    #[error("non-finite number in {context}")]
    NonFinite {
        /// Where it was found.
        context: String,
    },

    /// The state norm drifted away from 1 beyond the tolerance.
    #[error("state norm drifted to {norm:.12} (tolerance {tolerance:.1e}) in {context}")]
    NormDrift {
        /// Norm found.
        norm: f64,
        /// Tolerance allowed.
        tolerance: f64,
        /// Where.
        context: String,
    },

    /// A projection onto a measurement outcome that has (numerically) zero probability.
    #[error(
        "cannot project qubit {qubit} onto outcome {outcome}: its probability is {probability:e}"
    )]
    ImpossibleOutcome {
        /// The measured qubit.
        qubit: usize,
        /// The outcome asked for.
        outcome: bool,
        /// Its probability.
        probability: f64,
    },

    /// A problem in an OpenQASM source, with the file, line and column where it is.
    #[error("{file}:{line}:{column}: {message}")]
    Qasm {
        /// The file name as given (or the name given to a parsed string).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What kind of problem it is.
        kind: QasmErrorKind,
        /// What is wrong, for a person.
        message: String,
    },

    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Io {
        /// The path.
        path: String,
        /// The operating system's reason.
        reason: String,
    },

    /// A program operation that needs shot-by-shot simulation where a unitary circuit was
    /// asked for.
    #[error("operation {index} ({operation}) is not unitary: {reason}")]
    NotUnitaryProgram {
        /// Index of the operation in the program.
        index: usize,
        /// The operation, as text.
        operation: String,
        /// Why it prevents a unitary circuit.
        reason: &'static str,
    },

    /// Following every measurement branch would need more branches than allowed.
    #[error("exact outcome distribution needs more than {max} branches")]
    TooManyBranches {
        /// The limit.
        max: usize,
    },

    /// The classical side (candle) failed while training or evaluating a model.
    #[error("training failed: {message}")]
    Training {
        /// candle's message.
        message: String,
    },

    /// Every SVD algorithm in the fallback ladder failed on a cut.
    #[error("SVD of a {rows}x{cols} matrix failed: {reason}")]
    SvdFailed {
        /// Rows of the matrix.
        rows: usize,
        /// Columns of the matrix.
        cols: usize,
        /// Why the last attempt was rejected.
        reason: String,
    },

    /// Something was asked for that needs a cargo feature this build of qfl lacks.
    #[error(
        "{what} needs qfl built with the cargo feature `{feature}` (cargo build --features {feature})"
    )]
    FeatureNotEnabled {
        /// What was asked for.
        what: &'static str,
        /// The cargo feature that provides it.
        feature: &'static str,
    },

    /// A problem in a data file (CSV or `.ts`), with the file, line and field where it is.
    #[error("{}: {message}", data_location(.file, *.line, .field))]
    Data {
        /// The file name as given.
        file: String,
        /// 1-based line; 0 when the problem concerns the whole file (an empty file).
        line: usize,
        /// The field (column, channel) on that line, if one is to blame.
        field: Option<DataField>,
        /// What kind of problem it is.
        kind: DataErrorKind,
        /// What is wrong, for a person.
        message: String,
    },

    /// An in-memory data set, split or metric input that is inconsistent.
    #[error("invalid {what}: {reason}")]
    InvalidData {
        /// What was checked ("dataset", "modality fou", "scores", "split").
        what: String,
        /// What is wrong.
        reason: String,
    },

    /// Two inputs that must have the same length do not.
    #[error("{what}: expected length {expected}, got {got}")]
    LengthMismatch {
        /// Which inputs.
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length given.
        got: usize,
    },

    /// A score or feature value is NaN or infinite.
    #[error("{what} {index} is not finite: {value}")]
    NonFiniteValue {
        /// Which input ("score", "value").
        what: &'static str,
        /// Index in the input.
        index: usize,
        /// The value found.
        value: f64,
    },

    /// ROC AUC needs positive and negative examples; the labels have only one class.
    #[error("ROC AUC is undefined for {context}: all {n} labels are {class}")]
    SingleClass {
        /// Which AUC ("binary labels", "class 3 vs rest").
        context: String,
        /// Number of labels.
        n: usize,
        /// The one class present, as text.
        class: String,
    },

    /// A class has too few samples for the requested few-shot split.
    #[error("class {class} ({name}) has {have} samples; the split needs at least {need}")]
    TooFewSamples {
        /// Class index.
        class: usize,
        /// Class name.
        name: String,
        /// Samples of that class.
        have: usize,
        /// Samples needed (k training + 1 test).
        need: usize,
    },

    /// A bundled data set name that does not exist.
    #[error("unknown bundled data set {name:?}; known: {known}")]
    UnknownDataset {
        /// The name asked for.
        name: String,
        /// The known names, comma separated.
        known: String,
    },
}

impl Error {
    /// The kind of an [`Error::Qasm`], `None` for any other error.
    pub fn qasm_kind(&self) -> Option<QasmErrorKind> {
        match self {
            Error::Qasm { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The kind of an [`Error::Data`], `None` for any other error.
    pub fn data_kind(&self) -> Option<DataErrorKind> {
        match self {
            Error::Data { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// Result alias used throughout qfl.
pub type Result<T, E = Error> = std::result::Result<T, E>;
