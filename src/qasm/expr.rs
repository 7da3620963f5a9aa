//! Parameter expressions of OpenQASM 2.0: numbers, `pi`, gate parameters, `+ - * / ^`,
//! unary minus and the functions `sin cos tan exp ln sqrt`.

/// A unary function allowed in expressions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    Sin,
    Cos,
    Tan,
    Exp,
    Ln,
    Sqrt,
}

impl Func {
    /// The function of this name, if any.
    pub(crate) fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "sin" => Func::Sin,
            "cos" => Func::Cos,
            "tan" => Func::Tan,
            "exp" => Func::Exp,
            "ln" => Func::Ln,
            "sqrt" => Func::Sqrt,
            _ => return None,
        })
    }

    pub(crate) fn apply(self, x: f64) -> f64 {
        match self {
            Func::Sin => x.sin(),
            Func::Cos => x.cos(),
            Func::Tan => x.tan(),
            Func::Exp => x.exp(),
            Func::Ln => x.ln(),
            Func::Sqrt => x.sqrt(),
        }
    }
}

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

impl BinOp {
    pub(crate) fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Pow => a.powf(b),
        }
    }
}

/// An expression tree inside a gate body; constants are folded while parsing, so a
/// parameter-free expression is a single [`Expr::Num`].
///
/// The parser bounds both nesting depth and node count, so evaluating and dropping a tree
/// cannot exhaust the stack.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    Num(f64),
    /// The gate parameter with this index.
    Param(usize),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Call(Func, Box<Expr>),
}

impl Expr {
    /// Evaluates with the gate's parameter values (an index beyond them reads NaN, which the
    /// caller reports as a non-finite angle).
    pub(crate) fn eval(&self, params: &[f64]) -> f64 {
        match self {
            Expr::Num(v) => *v,
            Expr::Param(i) => params.get(*i).copied().unwrap_or(f64::NAN),
            Expr::Neg(e) => -e.eval(params),
            Expr::Bin(op, a, b) => op.apply(a.eval(params), b.eval(params)),
            Expr::Call(f, e) => f.apply(e.eval(params)),
        }
    }

    /// `-e`, folded when `e` is a number.
    pub(crate) fn neg(e: Expr) -> Expr {
        match e {
            Expr::Num(v) => Expr::Num(-v),
            e => Expr::Neg(Box::new(e)),
        }
    }

    /// `a op b`, folded when both are numbers.
    pub(crate) fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
        match (a, b) {
            (Expr::Num(x), Expr::Num(y)) => Expr::Num(op.apply(x, y)),
            (a, b) => Expr::Bin(op, Box::new(a), Box::new(b)),
        }
    }

    /// `f(e)`, folded when `e` is a number.
    pub(crate) fn call(f: Func, e: Expr) -> Expr {
        match e {
            Expr::Num(x) => Expr::Num(f.apply(x)),
            e => Expr::Call(f, Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_and_evaluation() {
        let e = Expr::bin(BinOp::Mul, Expr::Num(2.0), Expr::Param(1));
        assert_eq!(e.eval(&[0.0, 1.5]), 3.0);
        assert!(e.eval(&[0.0]).is_nan());
        assert_eq!(
            Expr::call(
                Func::Sqrt,
                Expr::bin(BinOp::Pow, Expr::Num(3.0), Expr::Num(2.0))
            ),
            Expr::Num(3.0)
        );
        assert_eq!(Expr::neg(Expr::Num(1.0)), Expr::Num(-1.0));
        assert_eq!(Func::from_name("ln"), Some(Func::Ln));
        assert_eq!(Func::from_name("log"), None);
        assert!(Func::Ln.apply(0.0).is_infinite());
    }
}
