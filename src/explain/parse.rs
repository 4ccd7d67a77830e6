//! The expression language of `chainrule explain`: numbers, variables,
//! `+ - * / ^`, unary minus, parentheses and calls of unary functions.
//!
//! Grammar (usual precedence; `^` binds tightest and is right-associative,
//! so `-x^2` is `-(x^2)` and `2^-1` is `2^(-1)`):
//!
//! ```text
//! expr    = term (("+" | "-") term)*
//! term    = unary (("*" | "/") unary)*
//! unary   = "-" unary | power
//! power   = primary ("^" unary)?
//! primary = number | name | name "(" expr ")" | "(" expr ")"
//! ```

use std::fmt;

/// The functions a call may name.
pub const FUNCTIONS: &[&str] = &[
    "exp", "log", "sqrt", "abs", "sin", "cos", "tanh", "sigmoid", "relu",
];

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Num(f64),
    Var(String),
    Neg(Box<Expr>),
    Bin(char, Box<Expr>, Box<Expr>),
    Call(String, Box<Expr>),
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Num(v) => write!(f, "{v}"),
            Expr::Var(n) => write!(f, "{n}"),
            Expr::Neg(e) => write!(f, "-{}", Paren(e)),
            Expr::Bin(op, a, b) => write!(f, "{}{op}{}", Paren(a), Paren(b)),
            Expr::Call(n, e) => write!(f, "{n}({e})"),
        }
    }
}

/// Displays a sub-expression, parenthesised unless it is atomic.
struct Paren<'a>(&'a Expr);
impl fmt::Display for Paren<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Expr::Num(_) | Expr::Var(_) | Expr::Call(..) => write!(f, "{}", self.0),
            e => write!(f, "({e})"),
        }
    }
}

impl Expr {
    /// The variable names used, in order of first appearance.
    pub fn variables(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<String>) {
        match self {
            Expr::Num(_) => {}
            Expr::Var(n) => {
                if !out.contains(n) {
                    out.push(n.clone());
                }
            }
            Expr::Neg(e) | Expr::Call(_, e) => e.collect(out),
            Expr::Bin(_, a, b) => {
                a.collect(out);
                b.collect(out);
            }
        }
    }
}

/// A parse error with the 1-based column where it was found.
#[derive(Debug, PartialEq)]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "syntax error at column {}: {}",
            self.column, self.message
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Sym(char),
    End,
}

fn tokenize(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            // Scientific notation: 1e-3, 2.5E+4.
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let v = text.parse::<f64>().map_err(|_| ParseError {
                column: col,
                message: format!("bad number '{text}'"),
            })?;
            out.push((Tok::Num(v), col));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Name(chars[start..i].iter().collect()), col));
        } else if "+-*/^()".contains(c) {
            out.push((Tok::Sym(c), col));
            i += 1;
        } else {
            return Err(ParseError {
                column: col,
                message: format!("unexpected character '{c}'"),
            });
        }
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }
    fn column(&self) -> usize {
        self.toks[self.pos].1
    }
    fn bump(&mut self) -> Tok {
        let t = self.toks[self.pos].0.clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            column: self.column(),
            message: message.into(),
        })
    }
    fn expect(&mut self, c: char) -> Result<(), ParseError> {
        if *self.peek() == Tok::Sym(c) {
            self.bump();
            Ok(())
        } else {
            self.fail(format!("expected '{c}'"))
        }
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.term()?;
        while let Tok::Sym(op @ ('+' | '-')) = *self.peek() {
            self.bump();
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(self.term()?));
        }
        Ok(lhs)
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        while let Tok::Sym(op @ ('*' | '/')) = *self.peek() {
            self.bump();
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(self.unary()?));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if *self.peek() == Tok::Sym('-') {
            self.bump();
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.power()
    }

    fn power(&mut self) -> Result<Expr, ParseError> {
        let base = self.primary()?;
        if *self.peek() == Tok::Sym('^') {
            self.bump();
            return Ok(Expr::Bin('^', Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let col = self.column();
        match self.bump() {
            Tok::Num(v) => Ok(Expr::Num(v)),
            Tok::Name(n) => {
                if *self.peek() == Tok::Sym('(') {
                    if !FUNCTIONS.contains(&n.as_str()) {
                        return Err(ParseError {
                            column: col,
                            message: format!(
                                "unknown function '{n}' (known: {})",
                                FUNCTIONS.join(", ")
                            ),
                        });
                    }
                    self.bump();
                    let arg = self.expr()?;
                    self.expect(')')?;
                    Ok(Expr::Call(n, Box::new(arg)))
                } else {
                    Ok(Expr::Var(n))
                }
            }
            Tok::Sym('(') => {
                let e = self.expr()?;
                self.expect(')')?;
                Ok(e)
            }
            Tok::End => Err(ParseError {
                column: col,
                message: "unexpected end of expression".into(),
            }),
            Tok::Sym(c) => Err(ParseError {
                column: col,
                message: format!("unexpected '{c}'"),
            }),
        }
    }
}

/// Parses an expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        toks: tokenize(src)?,
        pos: 0,
    };
    let e = p.expr()?;
    if *p.peek() != Tok::End {
        return p.fail("unexpected text after the expression");
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_associativity_follow_the_usual_rules() {
        assert_eq!(parse("1 + 2 * 3").unwrap().to_string(), "1+(2*3)");
        assert_eq!(parse("-x^2").unwrap().to_string(), "-(x^2)");
        assert_eq!(parse("2^3^2").unwrap().to_string(), "2^(3^2)");
        assert_eq!(parse("2^-1").unwrap().to_string(), "2^(-1)");
        assert_eq!(parse("a - b - c").unwrap().to_string(), "(a-b)-c");
        assert_eq!(parse("tanh(w*x + b)").unwrap().to_string(), "tanh((w*x)+b)");
        assert_eq!(
            parse("1.5e-3*x").unwrap(),
            Expr::Bin(
                '*',
                Box::new(Expr::Num(1.5e-3)),
                Box::new(Expr::Var("x".into()))
            )
        );
    }

    #[test]
    fn errors_give_the_column() {
        assert_eq!(
            parse("tanh(w*x + b").unwrap_err().to_string(),
            "syntax error at column 13: expected ')'"
        );
        assert_eq!(
            parse("x + * y").unwrap_err().to_string(),
            "syntax error at column 5: unexpected '*'"
        );
        assert_eq!(parse("x $ y").unwrap_err().column, 3);
        assert!(parse("foo(x)")
            .unwrap_err()
            .message
            .starts_with("unknown function 'foo'"));
        assert_eq!(
            parse("x y").unwrap_err().to_string(),
            "syntax error at column 3: unexpected text after the expression"
        );
    }

    #[test]
    fn variables_are_listed_in_order_of_appearance() {
        assert_eq!(parse("w*x + b*w").unwrap().variables(), ["w", "x", "b"]);
    }
}
