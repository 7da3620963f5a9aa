//! The OpenQASM 2.0 lexer: bytes in, tokens with byte offsets and line numbers out.
//!
//! It works on bytes, not `str`, so that any input (including invalid UTF-8 in comments)
//! is handled without panicking; identifiers and numbers are ASCII by construction. Columns
//! are not tracked per token: they are computed from the byte offset only when an error is
//! reported ([`column_of`]), which keeps the hot loop to a byte scan.

/// One token kind. Text-carrying tokens borrow from the source.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Tok<'a> {
    /// `[A-Za-z_][A-Za-z0-9_]*` (keywords are identifiers the parser recognizes).
    Ident(&'a str),
    /// `[0-9]+`.
    Int(&'a str),
    /// A real literal such as `1.5`, `.5`, `2.`, `1e-3`.
    Real(&'a str),
    /// A string literal, without its quotes.
    Str(&'a str),
    /// `;`
    Semi,
    /// `,`
    Comma,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `->`
    Arrow,
    /// `==`
    EqEq,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Star,
    /// `/`
    Slash,
    /// `^`
    Caret,
    /// End of input.
    Eof,
}

impl Tok<'_> {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("identifier '{s}'"),
            Tok::Int(s) | Tok::Real(s) => format!("number '{s}'"),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::Semi => "';'".into(),
            Tok::Comma => "','".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::LBrace => "'{'".into(),
            Tok::RBrace => "'}'".into(),
            Tok::Arrow => "'->'".into(),
            Tok::EqEq => "'=='".into(),
            Tok::Plus => "'+'".into(),
            Tok::Minus => "'-'".into(),
            Tok::Star => "'*'".into(),
            Tok::Slash => "'/'".into(),
            Tok::Caret => "'^'".into(),
            Tok::Eof => "end of file".into(),
        }
    }
}

/// A position in the source: byte offset and 1-based line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    pub offset: usize,
    pub line: usize,
}

/// A token and where it starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Token<'a> {
    pub tok: Tok<'a>,
    pub pos: Pos,
}

/// A lexical error: where and what.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LexError {
    pub pos: Pos,
    pub message: String,
}

/// Streaming lexer over a byte slice.
pub(crate) struct Lexer<'a> {
    src: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `src`.
    pub(crate) fn new(src: &'a [u8]) -> Self {
        Lexer {
            src,
            offset: 0,
            line: 1,
        }
    }

    fn peek_byte(&self, ahead: usize) -> Option<u8> {
        self.src.get(self.offset + ahead).copied()
    }

    fn pos(&self) -> Pos {
        Pos {
            offset: self.offset,
            line: self.line,
        }
    }

    /// Skips whitespace and `//` comments (and `/* */` block comments, which some
    /// generators emit).
    fn skip_trivia(&mut self) -> Result<(), LexError> {
        while let Some(b) = self.peek_byte(0) {
            match b {
                b'\n' => {
                    self.line += 1;
                    self.offset += 1;
                }
                b' ' | b'\t' | b'\r' | 0x0b | 0x0c => self.offset += 1,
                b'/' if self.peek_byte(1) == Some(b'/') => {
                    while let Some(c) = self.peek_byte(0) {
                        if c == b'\n' {
                            break;
                        }
                        self.offset += 1;
                    }
                }
                b'/' if self.peek_byte(1) == Some(b'*') => {
                    let start = self.pos();
                    self.offset += 2;
                    loop {
                        match self.peek_byte(0) {
                            None => {
                                return Err(LexError {
                                    pos: start,
                                    message: "unterminated block comment".into(),
                                });
                            }
                            Some(b'*') if self.peek_byte(1) == Some(b'/') => {
                                self.offset += 2;
                                break;
                            }
                            Some(c) => {
                                if c == b'\n' {
                                    self.line += 1;
                                }
                                self.offset += 1;
                            }
                        }
                    }
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// The text of `start..self.offset`, which the caller guarantees is ASCII.
    fn ascii(&self, start: usize) -> &'a str {
        // Only ASCII bytes were consumed, so this cannot fail; an empty string is a safe
        // fallback that the parser rejects as a syntax error.
        std::str::from_utf8(&self.src[start..self.offset]).unwrap_or("")
    }

    fn digits(&mut self) -> usize {
        let start = self.offset;
        while matches!(self.peek_byte(0), Some(b'0'..=b'9')) {
            self.offset += 1;
        }
        self.offset - start
    }

    fn number(&mut self) -> Tok<'a> {
        let start = self.offset;
        let int_digits = self.digits();
        let mut real = false;
        if self.peek_byte(0) == Some(b'.') {
            real = true;
            self.offset += 1;
            self.digits();
        }
        debug_assert!(int_digits > 0 || real);
        // An exponent only if a digit follows (optionally after a sign).
        if matches!(self.peek_byte(0), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(self.peek_byte(1), Some(b'+' | b'-')));
            if matches!(self.peek_byte(1 + sign), Some(b'0'..=b'9')) {
                real = true;
                self.offset += 1 + sign;
                self.digits();
            }
        }
        let text = self.ascii(start);
        if real {
            Tok::Real(text)
        } else {
            Tok::Int(text)
        }
    }

    /// The next token, or a lexical error.
    pub(crate) fn next_token(&mut self) -> Result<Token<'a>, LexError> {
        self.skip_trivia()?;
        let pos = self.pos();
        let Some(b) = self.peek_byte(0) else {
            return Ok(Token { tok: Tok::Eof, pos });
        };
        let single = |tok| Token { tok, pos };
        let tok = match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = self.offset;
                while matches!(
                    self.peek_byte(0),
                    Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_')
                ) {
                    self.offset += 1;
                }
                return Ok(single(Tok::Ident(self.ascii(start))));
            }
            b'0'..=b'9' => return Ok(single(self.number())),
            b'.' if matches!(self.peek_byte(1), Some(b'0'..=b'9')) => {
                return Ok(single(self.number()));
            }
            b'"' => {
                let start = self.offset + 1;
                let mut end = start;
                loop {
                    match self.src.get(end) {
                        Some(b'"') => break,
                        Some(b'\n') | None => {
                            return Err(LexError {
                                pos,
                                message: "unterminated string literal".into(),
                            });
                        }
                        Some(_) => end += 1,
                    }
                }
                let Ok(text) = std::str::from_utf8(&self.src[start..end]) else {
                    return Err(LexError {
                        pos,
                        message: "string literal is not valid UTF-8".into(),
                    });
                };
                self.offset = end + 1;
                return Ok(single(Tok::Str(text)));
            }
            b'-' if self.peek_byte(1) == Some(b'>') => {
                self.offset += 2;
                return Ok(single(Tok::Arrow));
            }
            b'=' if self.peek_byte(1) == Some(b'=') => {
                self.offset += 2;
                return Ok(single(Tok::EqEq));
            }
            b';' => Tok::Semi,
            b',' => Tok::Comma,
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b'[' => Tok::LBracket,
            b']' => Tok::RBracket,
            b'{' => Tok::LBrace,
            b'}' => Tok::RBrace,
            b'+' => Tok::Plus,
            b'-' => Tok::Minus,
            b'*' => Tok::Star,
            b'/' => Tok::Slash,
            b'^' => Tok::Caret,
            other => {
                let message = if other.is_ascii_graphic() {
                    format!("unexpected character '{}'", other as char)
                } else {
                    format!("unexpected byte 0x{other:02x}")
                };
                return Err(LexError { pos, message });
            }
        };
        self.offset += 1;
        Ok(single(tok))
    }
}

/// The 1-based column (in characters) of byte `offset` in `src`.
pub(crate) fn column_of(src: &[u8], offset: usize) -> usize {
    let offset = offset.min(src.len());
    let line_start = src[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    String::from_utf8_lossy(&src[line_start..offset])
        .chars()
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(src: &str) -> Vec<Tok<'_>> {
        let mut lx = Lexer::new(src.as_bytes());
        let mut out = Vec::new();
        loop {
            let t = lx.next_token().expect("lexes");
            if t.tok == Tok::Eof {
                return out;
            }
            out.push(t.tok);
        }
    }

    #[test]
    fn numbers_and_operators() {
        assert_eq!(
            all("1 2.5 .5 3. 1e-3 2E+4 7e x->y==z"),
            vec![
                Tok::Int("1"),
                Tok::Real("2.5"),
                Tok::Real(".5"),
                Tok::Real("3."),
                Tok::Real("1e-3"),
                Tok::Real("2E+4"),
                Tok::Int("7"),
                Tok::Ident("e"),
                Tok::Ident("x"),
                Tok::Arrow,
                Tok::Ident("y"),
                Tok::EqEq,
                Tok::Ident("z"),
            ]
        );
    }

    #[test]
    fn comments_and_lines() {
        let src = "// c\nqreg /* a\nb */ q[2]; // x\n\"f.inc\"";
        let mut lx = Lexer::new(src.as_bytes());
        let t = lx.next_token().unwrap();
        assert_eq!((t.tok, t.pos.line), (Tok::Ident("qreg"), 2));
        let t = lx.next_token().unwrap();
        assert_eq!((t.tok, t.pos.line), (Tok::Ident("q"), 3));
        for _ in 0..4 {
            lx.next_token().unwrap();
        }
        let t = lx.next_token().unwrap();
        assert_eq!((t.tok, t.pos.line), (Tok::Str("f.inc"), 4));
        assert_eq!(column_of(src.as_bytes(), t.pos.offset), 1);
    }

    #[test]
    fn errors_are_located() {
        let mut lx = Lexer::new(b"x\n  @");
        lx.next_token().unwrap();
        let e = lx.next_token().unwrap_err();
        assert_eq!(e.pos.line, 2);
        assert_eq!(column_of(b"x\n  @", e.pos.offset), 3);
        assert!(Lexer::new(b"\"abc").next_token().is_err());
        assert!(Lexer::new(b"/* never closed").next_token().is_err());
        assert!(Lexer::new(&[0xff]).next_token().is_err());
    }
}
