//! Recursive-descent parser and semantic checks for OpenQASM 2.0, producing a [`Program`].
//!
//! OpenQASM 2.0 declares everything before use, so parsing and checking happen in one
//! pass: registers and gates go into a [`Context`] as they are declared, and every
//! statement is resolved and expanded into program operations as soon as it is read.

use std::collections::HashMap;
use std::path::Path;

use super::expr::{BinOp, Expr, Func};
use super::lexer::{LexError, Lexer, Pos, Tok, Token, column_of};
use super::{
    MAX_EXPRESSION_DEPTH, MAX_EXPRESSION_NODES, MAX_GATE_DEPTH, MAX_INCLUDE_DEPTH, MAX_OPERATIONS,
    QELIB1, QELIB1_EXTRAS,
};
use crate::circuit::{Gate, Instruction, Operation, Param, Program};
use crate::error::{Error, QasmErrorKind as Kind, Result};

/// Where a gate definition comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// The 2017 `qelib1.inc`.
    Standard,
    /// Qiskit's additions: a file may redefine them.
    Extra,
    /// The program (or a user include).
    User,
}

/// A gate with a native qfl variant, built from evaluated angles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Native {
    U3,
    U2,
    P,
    Identity,
    X,
    Y,
    Z,
    H,
    S,
    Sdg,
    T,
    Tdg,
    Sx,
    Sxdg,
    Rx,
    Ry,
    Rz,
    Cx,
    Cy,
    Cz,
    Ch,
    Crx,
    Cry,
    Crz,
    Cp,
    Cu3,
    Swap,
    Rxx,
    Rzz,
    Ccx,
    Cswap,
}

impl Native {
    /// The native gate for a library definition of this name and signature.
    fn for_library(name: &str, n_params: usize, n_qubits: usize) -> Option<Native> {
        let (native, p, q) = match name {
            "u3" | "u" => (Native::U3, 3, 1),
            "u2" => (Native::U2, 2, 1),
            "u1" | "p" => (Native::P, 1, 1),
            "id" => (Native::Identity, 0, 1),
            "u0" => (Native::Identity, 1, 1),
            "x" => (Native::X, 0, 1),
            "y" => (Native::Y, 0, 1),
            "z" => (Native::Z, 0, 1),
            "h" => (Native::H, 0, 1),
            "s" => (Native::S, 0, 1),
            "sdg" => (Native::Sdg, 0, 1),
            "t" => (Native::T, 0, 1),
            "tdg" => (Native::Tdg, 0, 1),
            "sx" => (Native::Sx, 0, 1),
            "sxdg" => (Native::Sxdg, 0, 1),
            "rx" => (Native::Rx, 1, 1),
            "ry" => (Native::Ry, 1, 1),
            "rz" => (Native::Rz, 1, 1),
            "cx" => (Native::Cx, 0, 2),
            "cy" => (Native::Cy, 0, 2),
            "cz" => (Native::Cz, 0, 2),
            "ch" => (Native::Ch, 0, 2),
            "crx" => (Native::Crx, 1, 2),
            "cry" => (Native::Cry, 1, 2),
            "crz" => (Native::Crz, 1, 2),
            "cu1" | "cp" => (Native::Cp, 1, 2),
            "cu3" => (Native::Cu3, 3, 2),
            "swap" => (Native::Swap, 0, 2),
            "rxx" => (Native::Rxx, 1, 2),
            "rzz" => (Native::Rzz, 1, 2),
            "ccx" => (Native::Ccx, 0, 3),
            "cswap" => (Native::Cswap, 0, 3),
            _ => return None,
        };
        (p == n_params && q == n_qubits).then_some(native)
    }

    /// The gate with angles `a` (as many as the signature has).
    fn gate(self, a: &[f64]) -> Gate {
        let p = |i: usize| Param::Fixed(a.get(i).copied().unwrap_or(f64::NAN));
        match self {
            Native::U3 => Gate::U3 {
                theta: p(0),
                phi: p(1),
                lambda: p(2),
            },
            Native::U2 => Gate::U2 {
                phi: p(0),
                lambda: p(1),
            },
            Native::P => Gate::P(p(0)),
            Native::Identity => Gate::I,
            Native::X => Gate::X,
            Native::Y => Gate::Y,
            Native::Z => Gate::Z,
            Native::H => Gate::H,
            Native::S => Gate::S,
            Native::Sdg => Gate::Sdg,
            Native::T => Gate::T,
            Native::Tdg => Gate::Tdg,
            Native::Sx => Gate::Sx,
            Native::Sxdg => Gate::Sxdg,
            Native::Rx => Gate::Rx(p(0)),
            Native::Ry => Gate::Ry(p(0)),
            Native::Rz => Gate::Rz(p(0)),
            Native::Cx => Gate::Cx,
            Native::Cy => Gate::Cy,
            Native::Cz => Gate::Cz,
            Native::Ch => Gate::Ch,
            Native::Crx => Gate::Crx(p(0)),
            Native::Cry => Gate::Cry(p(0)),
            Native::Crz => Gate::Crz(p(0)),
            Native::Cp => Gate::Cp(p(0)),
            Native::Cu3 => Gate::Cu3 {
                theta: p(0),
                phi: p(1),
                lambda: p(2),
            },
            Native::Swap => Gate::Swap,
            Native::Rxx => Gate::Rxx(p(0)),
            Native::Rzz => Gate::Rzz(p(0)),
            Native::Ccx => Gate::Ccx,
            Native::Cswap => Gate::Cswap,
        }
    }
}

/// What a gate call resolves to inside a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Callee {
    /// The builtin `U(theta, phi, lambda)`.
    U,
    /// The builtin `CX`.
    Cx,
    /// A definition, by index into [`Context::gates`].
    Def(usize),
}

/// One gate call inside a gate body; qubits index the formal qubit arguments.
#[derive(Clone, Debug, PartialEq)]
struct BodyOp {
    callee: Callee,
    params: Vec<Expr>,
    qubits: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq)]
enum Body {
    Native(Native),
    Ops(Vec<BodyOp>),
    Opaque,
}

/// A defined (or opaque) gate.
#[derive(Clone, Debug, PartialEq)]
struct GateDef {
    n_params: usize,
    n_qubits: usize,
    body: Body,
    origin: Origin,
    /// `file:line` of the definition.
    declared_at: String,
    /// Nesting depth of user definitions below this one (0 for native and builtin calls).
    depth: usize,
    /// Number of primitive gates one call expands to (saturating).
    expanded_len: u64,
    /// The first opaque gate this definition calls (directly or not).
    opaque: Option<String>,
}

/// Everything declared so far, shared by a file and the files it includes.
struct Context {
    program: Program,
    gates: Vec<GateDef>,
    gate_index: HashMap<String, usize>,
    qregs: HashMap<String, usize>,
    cregs: HashMap<String, usize>,
    qelib1_included: bool,
    /// Map library gates to native variants (turned off by tests to check definitions).
    natives: bool,
}

/// Parses a whole source.
pub(crate) fn parse(src: &[u8], file: &str, dir: Option<&Path>, natives: bool) -> Result<Program> {
    let mut ctx = Context {
        program: Program::new(),
        gates: Vec::new(),
        gate_index: HashMap::new(),
        qregs: HashMap::new(),
        cregs: HashMap::new(),
        qelib1_included: false,
        natives,
    };
    Parser::new(&mut ctx, src, file, dir, Origin::User, 0).parse_file(true)?;
    Ok(ctx.program)
}

/// A parsed gate argument: a whole register or one bit of it.
#[derive(Clone, Copy, Debug)]
enum Arg {
    Whole { offset: usize, size: usize },
    Single(usize),
}

/// A condition `if (creg == value)`.
type Cond = Option<(usize, u64)>;

struct Parser<'s, 'c> {
    ctx: &'c mut Context,
    src: &'s [u8],
    file: &'s str,
    dir: Option<&'s Path>,
    origin: Origin,
    include_depth: usize,
    lexer: Lexer<'s>,
    peeked: Option<Token<'s>>,
    /// Nodes in the expression being parsed.
    expr_nodes: usize,
}

impl<'s, 'c> Parser<'s, 'c> {
    fn new(
        ctx: &'c mut Context,
        src: &'s [u8],
        file: &'s str,
        dir: Option<&'s Path>,
        origin: Origin,
        include_depth: usize,
    ) -> Self {
        Parser {
            ctx,
            src,
            file,
            dir,
            origin,
            include_depth,
            lexer: Lexer::new(src),
            peeked: None,
            expr_nodes: 0,
        }
    }

    // ----- errors and tokens -----

    fn err(&self, pos: Pos, kind: Kind, message: impl Into<String>) -> Error {
        Error::Qasm {
            file: self.file.to_string(),
            line: pos.line,
            column: column_of(self.src, pos.offset),
            kind,
            message: message.into(),
        }
    }

    fn lex_err(&self, e: LexError) -> Error {
        self.err(e.pos, Kind::Syntax, e.message)
    }

    fn peek(&mut self) -> Result<Token<'s>> {
        if let Some(t) = self.peeked {
            return Ok(t);
        }
        let t = self.lexer.next_token().map_err(|e| self.lex_err(e))?;
        self.peeked = Some(t);
        Ok(t)
    }

    fn next(&mut self) -> Result<Token<'s>> {
        let t = self.peek()?;
        self.peeked = None;
        Ok(t)
    }

    fn unexpected(&self, t: Token<'s>, wanted: &str) -> Error {
        self.err(
            t.pos,
            Kind::Syntax,
            format!("expected {wanted}, found {}", t.tok.describe()),
        )
    }

    /// Consumes a punctuation token equal to `want`.
    fn expect(&mut self, want: Tok<'static>, wanted: &str) -> Result<Token<'s>> {
        let t = self.next()?;
        if t.tok == want {
            Ok(t)
        } else {
            Err(self.unexpected(t, wanted))
        }
    }

    /// Consumes `want` if it is next.
    fn eat(&mut self, want: Tok<'static>) -> Result<bool> {
        if self.peek()?.tok == want {
            self.peeked = None;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn ident(&mut self, wanted: &str) -> Result<(&'s str, Pos)> {
        let t = self.next()?;
        match t.tok {
            Tok::Ident(s) if !s.is_empty() => Ok((s, t.pos)),
            _ => Err(self.unexpected(t, wanted)),
        }
    }

    fn int(&mut self, wanted: &str) -> Result<(u64, Pos)> {
        let t = self.next()?;
        match t.tok {
            Tok::Int(s) => s.parse::<u64>().map(|v| (v, t.pos)).map_err(|_| {
                self.err(
                    t.pos,
                    Kind::InvalidValue,
                    format!("integer {s} is too large"),
                )
            }),
            _ => Err(self.unexpected(t, wanted)),
        }
    }

    // ----- statements -----

    /// Parses statements to the end of the source.
    fn parse_file(&mut self, main: bool) -> Result<()> {
        let mut first = true;
        loop {
            let t = self.peek()?;
            match t.tok {
                Tok::Eof => return Ok(()),
                Tok::Ident("OPENQASM") => {
                    self.next()?;
                    if !(main && first) {
                        return Err(self.err(
                            t.pos,
                            Kind::Syntax,
                            "the OPENQASM version must be the first statement of the file",
                        ));
                    }
                    self.version()?;
                }
                _ => self.statement()?,
            }
            first = false;
        }
    }

    fn version(&mut self) -> Result<()> {
        let t = self.next()?;
        let text = match t.tok {
            Tok::Real(s) | Tok::Int(s) => s,
            _ => return Err(self.unexpected(t, "a version number such as 2.0")),
        };
        if text != "2" && !text.starts_with("2.") {
            return Err(self.err(
                t.pos,
                Kind::Unsupported,
                format!("OpenQASM version {text} is not supported: qfl reads OpenQASM 2.0"),
            ));
        }
        self.expect(Tok::Semi, "';'")?;
        Ok(())
    }

    fn statement(&mut self) -> Result<()> {
        let t = self.next()?;
        let Tok::Ident(word) = t.tok else {
            return Err(self.unexpected(t, "a statement"));
        };
        match word {
            "include" => self.include(t.pos),
            "qreg" => self.register(true),
            "creg" => self.register(false),
            "gate" => self.gate_definition(false),
            "opaque" => self.gate_definition(true),
            "barrier" => self.barrier(),
            "measure" => self.measure(None),
            "reset" => self.reset(None),
            "if" => self.conditional(t.pos),
            _ => self.gate_call(word, t.pos, None),
        }
    }

    fn include(&mut self, pos: Pos) -> Result<()> {
        let t = self.next()?;
        let Tok::Str(name) = t.tok else {
            return Err(self.unexpected(t, "a file name in double quotes"));
        };
        self.expect(Tok::Semi, "';'")?;
        if self.include_depth >= MAX_INCLUDE_DEPTH {
            return Err(self.err(
                pos,
                Kind::Limit,
                format!("includes are nested more than {MAX_INCLUDE_DEPTH} deep"),
            ));
        }
        if name == "qelib1.inc" {
            if self.ctx.qelib1_included {
                return Ok(());
            }
            self.ctx.qelib1_included = true;
            let depth = self.include_depth + 1;
            Parser::new(
                self.ctx,
                QELIB1.as_bytes(),
                "qelib1.inc",
                None,
                Origin::Standard,
                depth,
            )
            .parse_file(false)?;
            return Parser::new(
                self.ctx,
                QELIB1_EXTRAS.as_bytes(),
                "qelib1_extras.inc",
                None,
                Origin::Extra,
                depth,
            )
            .parse_file(false);
        }
        let Some(dir) = self.dir else {
            return Err(self.err(
                t.pos,
                Kind::Include,
                format!(
                    "cannot include \"{name}\": only qelib1.inc is built in, and a source parsed from memory has no directory to read other files from"
                ),
            ));
        };
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| {
            self.err(
                t.pos,
                Kind::Include,
                format!("cannot include \"{}\": {e}", path.display()),
            )
        })?;
        let file = path.display().to_string();
        let sub_dir = path.parent().map(Path::to_path_buf);
        Parser::new(
            self.ctx,
            &bytes,
            &file,
            sub_dir.as_deref(),
            Origin::User,
            self.include_depth + 1,
        )
        .parse_file(false)
    }

    fn register(&mut self, quantum: bool) -> Result<()> {
        let (name, pos) = self.ident("a register name")?;
        self.expect(Tok::LBracket, "'['")?;
        let (size, size_pos) = self.int("a register size")?;
        self.expect(Tok::RBracket, "']'")?;
        self.expect(Tok::Semi, "';'")?;
        if self.ctx.qregs.contains_key(name) || self.ctx.cregs.contains_key(name) {
            return Err(self.err(
                pos,
                Kind::Redefinition,
                format!("register '{name}' is already declared"),
            ));
        }
        if size == 0 {
            return Err(self.err(
                size_pos,
                Kind::InvalidValue,
                format!("register '{name}' must have at least one bit"),
            ));
        }
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let added = if quantum {
            self.ctx.program.add_qreg(name, size)
        } else {
            self.ctx.program.add_creg(name, size)
        };
        added.map_err(|e| self.err(size_pos, Kind::Limit, e.to_string()))?;
        if quantum {
            let index = self.ctx.program.qregs().len() - 1;
            self.ctx.qregs.insert(name.to_string(), index);
        } else {
            let index = self.ctx.program.cregs().len() - 1;
            self.ctx.cregs.insert(name.to_string(), index);
        }
        Ok(())
    }

    /// `name` or `name[index]` naming a quantum (or classical) register.
    fn argument(&mut self, quantum: bool) -> Result<(Arg, Pos)> {
        let (name, pos) = self.ident(if quantum {
            "a quantum register"
        } else {
            "a classical register"
        })?;
        let reg = if quantum {
            self.ctx
                .qregs
                .get(name)
                .map(|&i| &self.ctx.program.qregs()[i])
        } else {
            self.ctx
                .cregs
                .get(name)
                .map(|&i| &self.ctx.program.cregs()[i])
        };
        let Some(reg) = reg else {
            let other = if quantum {
                self.ctx.cregs.contains_key(name)
            } else {
                self.ctx.qregs.contains_key(name)
            };
            let message = match (other, quantum) {
                (true, true) => {
                    format!("'{name}' is a classical register, a quantum one is needed here")
                }
                (true, false) => {
                    format!("'{name}' is a quantum register, a classical one is needed here")
                }
                _ => format!("register '{name}' is not declared"),
            };
            return Err(self.err(pos, Kind::UndeclaredRegister, message));
        };
        let (offset, size) = (reg.offset(), reg.size());
        if !self.eat(Tok::LBracket)? {
            return Ok((Arg::Whole { offset, size }, pos));
        }
        let (index, index_pos) = self.int("an index")?;
        self.expect(Tok::RBracket, "']'")?;
        if index >= size as u64 {
            return Err(self.err(
                index_pos,
                Kind::IndexOutOfRange,
                format!("index {index} is out of range for register '{name}' of size {size}"),
            ));
        }
        Ok((Arg::Single(offset + index as usize), pos))
    }

    /// A non-empty comma-separated list of quantum arguments.
    fn argument_list(&mut self) -> Result<Vec<(Arg, Pos)>> {
        let mut args = vec![self.argument(true)?];
        while self.eat(Tok::Comma)? {
            args.push(self.argument(true)?);
        }
        Ok(args)
    }

    /// The number of broadcast calls a list of arguments makes (1 if all are single bits).
    fn broadcast_len(&self, args: &[(Arg, Pos)]) -> Result<usize> {
        let mut len: Option<(usize, Pos)> = None;
        for &(arg, pos) in args {
            if let Arg::Whole { size, .. } = arg {
                match len {
                    None => len = Some((size, pos)),
                    Some((n, _)) if n != size => {
                        return Err(self.err(
                            pos,
                            Kind::SizeMismatch,
                            format!(
                                "registers of different sizes ({n} and {size}) cannot be broadcast together"
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(len.map_or(1, |(n, _)| n))
    }

    fn resolve(arg: Arg, k: usize) -> usize {
        match arg {
            Arg::Whole { offset, .. } => offset + k,
            Arg::Single(q) => q,
        }
    }

    fn push_op(&mut self, op: Operation, cond: Cond, pos: Pos) -> Result<()> {
        if self.ctx.program.len() >= MAX_OPERATIONS {
            return Err(self.err(
                pos,
                Kind::Limit,
                format!("the program has more than {MAX_OPERATIONS} operations"),
            ));
        }
        let op = match cond {
            None => op,
            Some((creg, value)) => Operation::If {
                creg,
                value,
                op: Box::new(op),
            },
        };
        // Qubits, bits and registers were checked where they were read.
        self.ctx.program.push_prevalidated(op);
        Ok(())
    }

    fn barrier(&mut self) -> Result<()> {
        let args = self.argument_list()?;
        self.expect(Tok::Semi, "';'")?;
        let mut qubits = Vec::new();
        for &(arg, _) in &args {
            let n = match arg {
                Arg::Whole { size, .. } => size,
                Arg::Single(_) => 1,
            };
            for k in 0..n {
                let q = Self::resolve(arg, k);
                if !qubits.contains(&q) {
                    qubits.push(q);
                }
            }
        }
        let pos = args[0].1;
        self.push_op(Operation::Barrier { qubits }, None, pos)
    }

    fn measure(&mut self, cond: Cond) -> Result<()> {
        let (q, qpos) = self.argument(true)?;
        self.expect(Tok::Arrow, "'->'")?;
        let (c, cpos) = self.argument(false)?;
        self.expect(Tok::Semi, "';'")?;
        let pairs: Vec<(usize, usize)> = match (q, c) {
            (Arg::Single(q), Arg::Single(c)) => vec![(q, c)],
            (
                Arg::Whole {
                    offset: qo,
                    size: qs,
                },
                Arg::Whole {
                    offset: co,
                    size: cs,
                },
            ) => {
                if qs != cs {
                    return Err(self.err(
                        cpos,
                        Kind::SizeMismatch,
                        format!(
                            "cannot measure a register of {qs} qubits into a register of {cs} bits"
                        ),
                    ));
                }
                (0..qs).map(|k| (qo + k, co + k)).collect()
            }
            _ => {
                return Err(self.err(
                    cpos,
                    Kind::SizeMismatch,
                    "measure needs two whole registers or two single bits",
                ));
            }
        };
        for (qubit, clbit) in pairs {
            self.push_op(Operation::Measure { qubit, clbit }, cond, qpos)?;
        }
        Ok(())
    }

    fn reset(&mut self, cond: Cond) -> Result<()> {
        let (arg, pos) = self.argument(true)?;
        self.expect(Tok::Semi, "';'")?;
        let n = match arg {
            Arg::Whole { size, .. } => size,
            Arg::Single(_) => 1,
        };
        for k in 0..n {
            let qubit = Self::resolve(arg, k);
            self.push_op(Operation::Reset { qubit }, cond, pos)?;
        }
        Ok(())
    }

    fn conditional(&mut self, pos: Pos) -> Result<()> {
        self.expect(Tok::LParen, "'('")?;
        let (name, name_pos) = self.ident("a classical register")?;
        let Some(&creg) = self.ctx.cregs.get(name) else {
            let message = if self.ctx.qregs.contains_key(name) {
                format!("'{name}' is a quantum register, a classical one is needed here")
            } else {
                format!("register '{name}' is not declared")
            };
            return Err(self.err(name_pos, Kind::UndeclaredRegister, message));
        };
        self.expect(Tok::EqEq, "'=='")?;
        let (value, _) = self.int("an integer")?;
        self.expect(Tok::RParen, "')'")?;
        let t = self.next()?;
        let cond = Some((creg, value));
        match t.tok {
            Tok::Ident("measure") => self.measure(cond),
            Tok::Ident("reset") => self.reset(cond),
            Tok::Ident(
                "if" | "barrier" | "gate" | "opaque" | "qreg" | "creg" | "include" | "OPENQASM",
            ) => Err(self.err(
                t.pos,
                Kind::Syntax,
                "only a gate, measure or reset can follow if (...)",
            )),
            Tok::Ident(word) if !word.is_empty() => self.gate_call(word, t.pos, cond),
            _ => Err(self.err(
                pos,
                Kind::Syntax,
                format!(
                    "expected a gate, measure or reset after if (...), found {}",
                    t.tok.describe()
                ),
            )),
        }
    }

    /// A gate call at the top level (possibly conditioned): resolves the gate, evaluates
    /// the angles, broadcasts over registers and expands into primitive gates.
    fn gate_call(&mut self, name: &'s str, pos: Pos, cond: Cond) -> Result<()> {
        let callee = self.lookup_gate(name, pos)?;
        let params = if self.eat(Tok::LParen)? {
            self.top_level_params()?
        } else {
            Vec::new()
        };
        let args = self.argument_list()?;
        self.expect(Tok::Semi, "';'")?;
        let (n_params, n_qubits, expanded_len) = self.signature(callee);
        if params.len() != n_params {
            return Err(self.err(
                pos,
                Kind::WrongParameterCount,
                format!(
                    "gate '{name}' takes {n_params} parameter(s) but {} were given",
                    params.len()
                ),
            ));
        }
        if args.len() != n_qubits {
            return Err(self.err(
                pos,
                Kind::WrongArgumentCount,
                format!(
                    "gate '{name}' acts on {n_qubits} qubit(s) but {} argument(s) were given",
                    args.len()
                ),
            ));
        }
        if let Callee::Def(i) = callee
            && let Some(opaque) = &self.ctx.gates[i].opaque
        {
            let message = if opaque == name {
                format!(
                    "gate '{name}' is opaque (declared at {}): it has no definition to simulate",
                    self.ctx.gates[i].declared_at
                )
            } else {
                format!(
                    "gate '{name}' calls the opaque gate '{opaque}', which has no definition to simulate"
                )
            };
            return Err(self.err(pos, Kind::Opaque, message));
        }
        let count = self.broadcast_len(&args)?;
        let total = (count as u64).saturating_mul(expanded_len);
        if total.saturating_add(self.ctx.program.len() as u64) > MAX_OPERATIONS as u64 {
            return Err(self.err(
                pos,
                Kind::Limit,
                format!(
                    "expanding this call of '{name}' would make the program longer than {MAX_OPERATIONS} operations"
                ),
            ));
        }
        let mut qubits = Vec::with_capacity(args.len());
        for k in 0..count {
            qubits.clear();
            for &(arg, arg_pos) in &args {
                let q = Self::resolve(arg, k);
                if qubits.contains(&q) {
                    return Err(self.err(
                        arg_pos,
                        Kind::RepeatedQubit,
                        format!(
                            "qubit {} appears twice in one call of '{name}'",
                            self.ctx.program.qubit_name(q)
                        ),
                    ));
                }
                qubits.push(q);
            }
            self.expand(callee, &params, &qubits, cond)
                .map_err(|message| self.err(pos, Kind::InvalidValue, message))?;
        }
        Ok(())
    }

    fn lookup_gate(&self, name: &str, pos: Pos) -> Result<Callee> {
        match name {
            "U" => Ok(Callee::U),
            "CX" => Ok(Callee::Cx),
            _ => match self.ctx.gate_index.get(name) {
                Some(&i) => Ok(Callee::Def(i)),
                None => {
                    let hint = if self.ctx.qelib1_included {
                        ""
                    } else {
                        " (is include \"qelib1.inc\"; missing?)"
                    };
                    Err(self.err(
                        pos,
                        Kind::UndeclaredGate,
                        format!("gate '{name}' is not defined{hint}"),
                    ))
                }
            },
        }
    }

    /// (parameters, qubits, primitive gates per call) of a callee.
    fn signature(&self, callee: Callee) -> (usize, usize, u64) {
        match callee {
            Callee::U => (3, 1, 1),
            Callee::Cx => (0, 2, 1),
            Callee::Def(i) => {
                let g = &self.ctx.gates[i];
                (g.n_params, g.n_qubits, g.expanded_len)
            }
        }
    }

    /// Pushes the primitive gates of one call; the error is a message for the call site.
    fn expand(
        &mut self,
        callee: Callee,
        params: &[f64],
        qubits: &[usize],
        cond: Cond,
    ) -> std::result::Result<(), String> {
        let Context { program, gates, .. } = &mut *self.ctx;
        expand_into(program, gates, callee, params, qubits, cond, 0)
    }

    fn top_level_params(&mut self) -> Result<Vec<f64>> {
        let mut out = Vec::new();
        if self.eat(Tok::RParen)? {
            return Ok(out);
        }
        loop {
            let pos = self.peek()?.pos;
            let e = self.expression(&[])?;
            let v = e.eval(&[]);
            if !v.is_finite() {
                return Err(self.err(
                    pos,
                    Kind::InvalidValue,
                    format!("parameter evaluates to {v}, which is not a finite angle"),
                ));
            }
            out.push(v);
            let t = self.next()?;
            match t.tok {
                Tok::Comma => {}
                Tok::RParen => return Ok(out),
                _ => return Err(self.unexpected(t, "',' or ')'")),
            }
        }
    }

    // ----- gate definitions -----

    fn name_list(&mut self, what: &str, close: Tok<'static>) -> Result<Vec<(&'s str, Pos)>> {
        let mut out: Vec<(&'s str, Pos)> = Vec::new();
        if close == Tok::RParen && self.eat(Tok::RParen)? {
            return Ok(out);
        }
        loop {
            let (name, pos) = self.ident(what)?;
            if out.iter().any(|(n, _)| *n == name) {
                return Err(self.err(
                    pos,
                    Kind::RepeatedQubit,
                    format!("'{name}' appears twice in the gate signature"),
                ));
            }
            out.push((name, pos));
            if close == Tok::RParen {
                let t = self.next()?;
                match t.tok {
                    Tok::Comma => {}
                    Tok::RParen => return Ok(out),
                    _ => return Err(self.unexpected(t, "',' or ')'")),
                }
            } else if !self.eat(Tok::Comma)? {
                return Ok(out);
            }
        }
    }

    fn gate_definition(&mut self, opaque: bool) -> Result<()> {
        let (name, pos) = self.ident("a gate name")?;
        if matches!(name, "U" | "CX") || Func::from_name(name).is_some() || name == "pi" {
            return Err(self.err(
                pos,
                Kind::Redefinition,
                format!("'{name}' is reserved and cannot be a gate name"),
            ));
        }
        if let Some(&i) = self.ctx.gate_index.get(name)
            && self.ctx.gates[i].origin != Origin::Extra
        {
            return Err(self.err(
                pos,
                Kind::Redefinition,
                format!(
                    "gate '{name}' is already defined (at {})",
                    self.ctx.gates[i].declared_at
                ),
            ));
        }
        let params = if self.eat(Tok::LParen)? {
            self.name_list("a parameter name", Tok::RParen)?
        } else {
            Vec::new()
        };
        let qubits = self.name_list("a qubit argument name", Tok::LBrace)?;
        for (q, qpos) in &qubits {
            if params.iter().any(|(p, _)| p == q) {
                return Err(self.err(
                    *qpos,
                    Kind::RepeatedQubit,
                    format!("'{q}' is both a parameter and a qubit argument"),
                ));
            }
        }
        let param_names: Vec<&str> = params.iter().map(|p| p.0).collect();
        let qubit_names: Vec<&str> = qubits.iter().map(|q| q.0).collect();
        let declared_at = format!("{}:{}", self.file, pos.line);
        let def = if opaque {
            self.expect(Tok::Semi, "';'")?;
            GateDef {
                n_params: params.len(),
                n_qubits: qubits.len(),
                body: Body::Opaque,
                origin: self.origin,
                declared_at,
                depth: 0,
                expanded_len: 0,
                opaque: Some(name.to_string()),
            }
        } else {
            self.expect(Tok::LBrace, "'{'")?;
            let ops = self.gate_body(&param_names, &qubit_names)?;
            let native = if self.origin != Origin::User && self.ctx.natives {
                Native::for_library(name, params.len(), qubits.len())
            } else {
                None
            };
            let mut depth = 0;
            let mut len: u64 = 0;
            let mut opaque_dep = None;
            for op in &ops {
                if let Callee::Def(i) = op.callee {
                    let g = &self.ctx.gates[i];
                    depth = depth.max(g.depth);
                    len = len.saturating_add(g.expanded_len);
                    if opaque_dep.is_none() {
                        opaque_dep.clone_from(&g.opaque);
                    }
                } else {
                    len = len.saturating_add(1);
                }
            }
            let depth = depth + 1;
            if depth > MAX_GATE_DEPTH {
                return Err(self.err(
                    pos,
                    Kind::Limit,
                    format!("gate '{name}' nests gate definitions more than {MAX_GATE_DEPTH} deep"),
                ));
            }
            match native {
                Some(native) => GateDef {
                    n_params: params.len(),
                    n_qubits: qubits.len(),
                    body: Body::Native(native),
                    origin: self.origin,
                    declared_at,
                    depth: 0,
                    expanded_len: 1,
                    opaque: None,
                },
                None => GateDef {
                    n_params: params.len(),
                    n_qubits: qubits.len(),
                    body: Body::Ops(ops),
                    origin: self.origin,
                    declared_at,
                    depth,
                    expanded_len: len,
                    opaque: opaque_dep,
                },
            }
        };
        self.ctx.gates.push(def);
        let index = self.ctx.gates.len() - 1;
        self.ctx.gate_index.insert(name.to_string(), index);
        Ok(())
    }

    /// The statements of a gate body up to and including `}`.
    fn gate_body(&mut self, params: &[&str], qubits: &[&str]) -> Result<Vec<BodyOp>> {
        let mut ops = Vec::new();
        loop {
            let t = self.next()?;
            let word = match t.tok {
                Tok::RBrace => return Ok(ops),
                Tok::Ident(w) if !w.is_empty() => w,
                _ => return Err(self.unexpected(t, "a gate call or '}'")),
            };
            if word == "barrier" {
                // Barriers inside gates have no effect on the state.
                self.body_qubits(qubits)?;
                continue;
            }
            if matches!(
                word,
                "measure" | "reset" | "if" | "qreg" | "creg" | "gate" | "opaque" | "include"
            ) {
                return Err(self.err(
                    t.pos,
                    Kind::Syntax,
                    format!("'{word}' is not allowed inside a gate body"),
                ));
            }
            let callee = self.lookup_gate(word, t.pos)?;
            let mut exprs = Vec::new();
            if self.eat(Tok::LParen)? && !self.eat(Tok::RParen)? {
                loop {
                    exprs.push(self.expression(params)?);
                    let t = self.next()?;
                    match t.tok {
                        Tok::Comma => {}
                        Tok::RParen => break,
                        _ => return Err(self.unexpected(t, "',' or ')'")),
                    }
                }
            }
            let args = self.body_qubits(qubits)?;
            let (n_params, n_qubits, _) = self.signature(callee);
            if exprs.len() != n_params {
                return Err(self.err(
                    t.pos,
                    Kind::WrongParameterCount,
                    format!(
                        "gate '{word}' takes {n_params} parameter(s) but {} were given",
                        exprs.len()
                    ),
                ));
            }
            if args.len() != n_qubits {
                return Err(self.err(
                    t.pos,
                    Kind::WrongArgumentCount,
                    format!(
                        "gate '{word}' acts on {n_qubits} qubit(s) but {} argument(s) were given",
                        args.len()
                    ),
                ));
            }
            ops.push(BodyOp {
                callee,
                params: exprs,
                qubits: args,
            });
        }
    }

    /// Qubit arguments inside a gate body (formal names only, distinct), up to `;`.
    fn body_qubits(&mut self, qubits: &[&str]) -> Result<Vec<usize>> {
        let mut out = Vec::new();
        loop {
            let (name, pos) = self.ident("a qubit argument")?;
            let Some(k) = qubits.iter().position(|q| *q == name) else {
                return Err(self.err(
                    pos,
                    Kind::UndeclaredRegister,
                    format!("'{name}' is not a qubit argument of this gate"),
                ));
            };
            if self.peek()?.tok == Tok::LBracket {
                let t = self.next()?;
                return Err(self.err(
                    t.pos,
                    Kind::Syntax,
                    "qubit arguments cannot be indexed inside a gate body",
                ));
            }
            if out.contains(&k) {
                return Err(self.err(
                    pos,
                    Kind::RepeatedQubit,
                    format!("qubit argument '{name}' appears twice in one gate call"),
                ));
            }
            out.push(k);
            let t = self.next()?;
            match t.tok {
                Tok::Comma => {}
                Tok::Semi => return Ok(out),
                _ => return Err(self.unexpected(t, "',' or ';'")),
            }
        }
    }

    // ----- expressions -----

    /// An expression whose identifiers may be the names in `params`.
    fn expression(&mut self, params: &[&str]) -> Result<Expr> {
        self.expr_nodes = 0;
        self.sum(params, 0)
    }

    fn count_node(&mut self, pos: Pos) -> Result<()> {
        self.expr_nodes += 1;
        if self.expr_nodes > MAX_EXPRESSION_NODES {
            return Err(self.err(
                pos,
                Kind::Limit,
                format!("expression has more than {MAX_EXPRESSION_NODES} terms"),
            ));
        }
        Ok(())
    }

    fn sum(&mut self, params: &[&str], depth: usize) -> Result<Expr> {
        let mut acc = self.product(params, depth)?;
        loop {
            let t = self.peek()?;
            let op = match t.tok {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(acc),
            };
            self.next()?;
            self.count_node(t.pos)?;
            let rhs = self.product(params, depth)?;
            acc = Expr::bin(op, acc, rhs);
        }
    }

    fn product(&mut self, params: &[&str], depth: usize) -> Result<Expr> {
        let mut acc = self.unary(params, depth)?;
        loop {
            let t = self.peek()?;
            let op = match t.tok {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                _ => return Ok(acc),
            };
            self.next()?;
            self.count_node(t.pos)?;
            let rhs = self.unary(params, depth)?;
            acc = Expr::bin(op, acc, rhs);
        }
    }

    /// Unary minus binds looser than `^`: `-2^2` is `-4`.
    fn unary(&mut self, params: &[&str], depth: usize) -> Result<Expr> {
        let t = self.peek()?;
        if depth >= MAX_EXPRESSION_DEPTH {
            return Err(self.err(
                t.pos,
                Kind::Limit,
                format!("expression is nested more than {MAX_EXPRESSION_DEPTH} deep"),
            ));
        }
        match t.tok {
            Tok::Minus => {
                self.next()?;
                self.count_node(t.pos)?;
                Ok(Expr::neg(self.unary(params, depth + 1)?))
            }
            Tok::Plus => {
                self.next()?;
                self.unary(params, depth + 1)
            }
            _ => {
                let base = self.atom(params, depth)?;
                let t = self.peek()?;
                if t.tok == Tok::Caret {
                    self.next()?;
                    self.count_node(t.pos)?;
                    // Right associative: the exponent is itself a unary expression.
                    let exponent = self.unary(params, depth + 1)?;
                    Ok(Expr::bin(BinOp::Pow, base, exponent))
                } else {
                    Ok(base)
                }
            }
        }
    }

    fn atom(&mut self, params: &[&str], depth: usize) -> Result<Expr> {
        let t = self.next()?;
        self.count_node(t.pos)?;
        match t.tok {
            Tok::Int(s) | Tok::Real(s) => s
                .parse::<f64>()
                .map(Expr::Num)
                .map_err(|_| self.err(t.pos, Kind::Syntax, format!("invalid number '{s}'"))),
            Tok::Ident("pi") => Ok(Expr::Num(std::f64::consts::PI)),
            Tok::Ident(name) => {
                if let Some(f) = Func::from_name(name) {
                    self.expect(Tok::LParen, "'(' after a function name")?;
                    let arg = self.sum(params, depth + 1)?;
                    self.expect(Tok::RParen, "')'")?;
                    return Ok(Expr::call(f, arg));
                }
                match params.iter().position(|p| *p == name) {
                    Some(i) => Ok(Expr::Param(i)),
                    None => Err(self.err(
                        t.pos,
                        Kind::UndeclaredParameter,
                        if params.is_empty() {
                            format!("unknown identifier '{name}' in an expression")
                        } else {
                            format!("'{name}' is not a parameter of this gate")
                        },
                    )),
                }
            }
            Tok::LParen => {
                let e = self.sum(params, depth + 1)?;
                self.expect(Tok::RParen, "')'")?;
                Ok(e)
            }
            _ => Err(self.unexpected(t, "a number, 'pi', a parameter or '('")),
        }
    }
}

/// Pushes the primitive gates of one call of `callee`. `depth` bounds the recursion (the
/// definitions already guarantee it is at most [`MAX_GATE_DEPTH`]).
fn expand_into(
    program: &mut Program,
    gates: &[GateDef],
    callee: Callee,
    params: &[f64],
    qubits: &[usize],
    cond: Cond,
    depth: usize,
) -> std::result::Result<(), String> {
    let push = |program: &mut Program, gate: Gate| -> std::result::Result<(), String> {
        let inst =
            Instruction::checked(gate, qubits, program.n_qubits()).map_err(|e| e.to_string())?;
        let op = match cond {
            None => Operation::Gate(inst),
            Some((creg, value)) => Operation::If {
                creg,
                value,
                op: Box::new(Operation::Gate(inst)),
            },
        };
        program.push_prevalidated(op);
        Ok(())
    };
    if depth > MAX_GATE_DEPTH {
        return Err(format!("gate expansion deeper than {MAX_GATE_DEPTH}"));
    }
    if let Some(bad) = params.iter().find(|v| !v.is_finite()) {
        return Err(format!(
            "a gate angle evaluates to {bad}, which is not finite"
        ));
    }
    match callee {
        Callee::U => push(program, Native::U3.gate(params)),
        Callee::Cx => push(program, Gate::Cx),
        Callee::Def(i) => {
            let Some(def) = gates.get(i) else {
                return Err(format!("internal error: gate definition {i} is missing"));
            };
            match &def.body {
                Body::Native(native) => push(program, native.gate(params)),
                Body::Opaque => Err("an opaque gate has no definition to simulate".into()),
                Body::Ops(ops) => {
                    let mut values = Vec::new();
                    let mut sub_qubits = Vec::new();
                    for op in ops {
                        values.clear();
                        values.extend(op.params.iter().map(|e| e.eval(params)));
                        sub_qubits.clear();
                        for &k in &op.qubits {
                            let Some(&q) = qubits.get(k) else {
                                return Err("internal error: qubit argument out of range".into());
                            };
                            sub_qubits.push(q);
                        }
                        expand_into(
                            program,
                            gates,
                            op.callee,
                            &values,
                            &sub_qubits,
                            cond,
                            depth + 1,
                        )?;
                    }
                    Ok(())
                }
            }
        }
    }
}

/// Test hook: parses with library gates expanded by their definitions instead of mapped to
/// native variants.
#[cfg(test)]
pub(crate) fn parse_without_natives(src: &str) -> Result<Program> {
    parse(src.as_bytes(), "test.qasm", None, false)
}
