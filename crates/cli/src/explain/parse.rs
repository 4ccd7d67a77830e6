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
//!
//! The parser is an operator-precedence (shunting-yard) loop with explicit
//! stacks, and an [`Expr`] is a flat list of nodes in which every node comes
//! after its operands. Nothing here or downstream (evaluation, building the
//! graph, printing, dropping) recurses, so nesting depth is limited only by
//! memory: 100,000 nested parentheses parse like any other input.

use std::collections::HashMap;
use std::fmt;

/// The functions a call may name.
pub const FUNCTIONS: &[&str] = &[
    "exp", "log", "sqrt", "abs", "sin", "cos", "tanh", "sigmoid", "relu",
];

/// A unary function a call may name (see [`FUNCTIONS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// e^x.
    Exp,
    /// The natural logarithm.
    Log,
    /// The square root.
    Sqrt,
    /// |x|.
    Abs,
    /// sin x.
    Sin,
    /// cos x.
    Cos,
    /// tanh x.
    Tanh,
    /// The logistic function 1/(1 + e^−x).
    Sigmoid,
    /// max(x, 0).
    Relu,
}

impl Func {
    const ALL: [Func; 9] = [
        Func::Exp,
        Func::Log,
        Func::Sqrt,
        Func::Abs,
        Func::Sin,
        Func::Cos,
        Func::Tanh,
        Func::Sigmoid,
        Func::Relu,
    ];

    /// The function's name as written in an expression.
    pub fn name(self) -> &'static str {
        FUNCTIONS[self as usize]
    }

    fn from_name(name: &str) -> Option<Func> {
        Func::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The function at `x`, computed as the graph's op computes it.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Func::Exp => x.exp(),
            Func::Log => x.ln(),
            Func::Sqrt => x.sqrt(),
            Func::Abs => x.abs(),
            Func::Sin => x.sin(),
            Func::Cos => x.cos(),
            Func::Tanh => x.tanh(),
            Func::Sigmoid if x >= 0.0 => 1.0 / (1.0 + (-x).exp()),
            Func::Sigmoid => x.exp() / (1.0 + x.exp()),
            Func::Relu if x > 0.0 => x,
            Func::Relu => 0.0,
        }
    }
}

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `^`
    Pow,
}

impl BinOp {
    /// The operator's symbol.
    pub fn symbol(self) -> char {
        match self {
            BinOp::Add => '+',
            BinOp::Sub => '-',
            BinOp::Mul => '*',
            BinOp::Div => '/',
            BinOp::Pow => '^',
        }
    }

    fn from_symbol(c: char) -> Option<BinOp> {
        Some(match c {
            '+' => BinOp::Add,
            '-' => BinOp::Sub,
            '*' => BinOp::Mul,
            '/' => BinOp::Div,
            '^' => BinOp::Pow,
            _ => return None,
        })
    }

    /// Binding strength: `+ -` 1, `* /` 2, (unary minus 3), `^` 4.
    fn precedence(self) -> u8 {
        match self {
            BinOp::Add | BinOp::Sub => 1,
            BinOp::Mul | BinOp::Div => 2,
            BinOp::Pow => 4,
        }
    }

    /// `a op b` on numbers, as the graph's op computes it.
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Pow => a.powf(b),
        }
    }
}

/// The precedence of unary minus: below `^`, above `*` and `/`.
const NEG_PRECEDENCE: u8 = 3;

/// One node of an [`Expr`]; operands are indices of earlier nodes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Node {
    /// A number.
    Num(f64),
    /// The variable with this index in [`Expr::variables`].
    Var(usize),
    /// Unary minus.
    Neg(usize),
    /// A binary operation.
    Bin(BinOp, usize, usize),
    /// A function call.
    Call(Func, usize),
}

impl Node {
    /// Atomic nodes are printed without parentheses as operands.
    fn is_atomic(self) -> bool {
        matches!(self, Node::Num(_) | Node::Var(_) | Node::Call(..))
    }
}

/// A parsed expression: nodes in post-order (each after its operands, the
/// last one the whole expression) and the variable names.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    nodes: Vec<Node>,
    names: Vec<String>,
}

impl Expr {
    /// The nodes, each after its operands; the last is the root.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The variable names used, in order of first appearance.
    pub fn variables(&self) -> &[String] {
        &self.names
    }

    /// The value at `at` (one number per variable, in [`Expr::variables`]
    /// order), computed with plain numbers in one pass over the nodes.
    pub fn eval(&self, at: &[f64]) -> f64 {
        let mut values: Vec<f64> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let v = match *node {
                Node::Num(x) => x,
                Node::Var(i) => at[i],
                Node::Neg(a) => -values[a],
                Node::Bin(op, a, b) => op.apply(values[a], values[b]),
                Node::Call(f, a) => f.apply(values[a]),
            };
            values.push(v);
        }
        values.last().copied().unwrap_or(f64::NAN)
    }

    /// The printed length (in chars) of every node's sub-expression, in one
    /// pass, so that callers can decide which to print without printing all.
    pub fn text_lengths(&self) -> Vec<usize> {
        let mut len: Vec<usize> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let operand = |i: usize| len[i] + if self.nodes[i].is_atomic() { 0 } else { 2 };
            let l = match *node {
                Node::Num(x) => x.to_string().len(),
                Node::Var(i) => self.names[i].chars().count(),
                Node::Neg(a) => 1 + operand(a),
                Node::Bin(_, a, b) => operand(a) + 1 + operand(b),
                Node::Call(f, a) => f.name().len() + 2 + len[a],
            };
            len.push(l);
        }
        len
    }

    /// The sub-expression of node `i`, fully parenthesised.
    pub fn text_of(&self, i: usize) -> String {
        let mut s = String::new();
        let _ = self.write_node(&mut s, i);
        s
    }

    /// Writes node `root`'s sub-expression with an explicit work stack.
    fn write_node(&self, out: &mut impl fmt::Write, root: usize) -> fmt::Result {
        enum Work {
            Node(usize),
            Operand(usize),
            Text(&'static str),
            Char(char),
        }
        let mut work = vec![Work::Node(root)];
        while let Some(item) = work.pop() {
            match item {
                Work::Text(t) => out.write_str(t)?,
                Work::Char(c) => out.write_char(c)?,
                Work::Operand(i) if self.nodes[i].is_atomic() => work.push(Work::Node(i)),
                Work::Operand(i) => {
                    out.write_char('(')?;
                    work.extend([Work::Char(')'), Work::Node(i)]);
                }
                Work::Node(i) => match self.nodes[i] {
                    Node::Num(x) => write!(out, "{x}")?,
                    Node::Var(v) => out.write_str(&self.names[v])?,
                    Node::Neg(a) => {
                        out.write_char('-')?;
                        work.push(Work::Operand(a));
                    }
                    Node::Bin(op, a, b) => {
                        let sym = Work::Char(op.symbol());
                        work.extend([Work::Operand(b), sym, Work::Operand(a)]);
                    }
                    Node::Call(f, a) => {
                        out.write_str(f.name())?;
                        out.write_char('(')?;
                        work.extend([Work::Text(")"), Work::Node(a)]);
                    }
                },
            }
        }
        Ok(())
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.nodes.len() {
            0 => Ok(()),
            n => self.write_node(f, n - 1),
        }
    }
}

/// A parse error with the 1-based column (in characters) where it was found.
#[derive(Debug, PartialEq)]
pub struct ParseError {
    /// The 1-based column.
    pub column: usize,
    /// What is wrong there.
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

impl std::error::Error for ParseError {}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Sym(char),
    End,
}

/// Reads a number from `text` (Rust's syntax, so `inf` and `nan` too): a
/// literal that overflows to ±∞ or a non-zero one that underflows to 0 is an
/// error rather than a silent substitution. The error says what is wrong
/// ("not a number", "too large for f64 (…)", "too small for f64 (…)").
pub fn parse_number(text: &str) -> Result<f64, String> {
    let v: f64 = text.parse().map_err(|_| "not a number".to_string())?;
    let mantissa = text
        .trim_start_matches(['+', '-'])
        .split(['e', 'E'])
        .next()
        .unwrap_or("");
    let digits = mantissa.chars().all(|c| c.is_ascii_digit() || c == '.');
    if v.is_infinite() && digits {
        return Err(format!(
            "too large for f64 (it overflows to infinity; the largest is {:e})",
            f64::MAX
        ));
    }
    if v == 0.0 && digits && mantissa.chars().any(|c| ('1'..='9').contains(&c)) {
        return Err(format!(
            "too small for f64 (it underflows to 0; the smallest is {:e})",
            f64::from_bits(1)
        ));
    }
    Ok(v)
}

/// The end (exclusive) of the number starting at `i`: digits and dots, then
/// an optional exponent (`1e-3`, `2.5E+4`).
fn number_end(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
        i += 1;
    }
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
    i
}

fn tokenize(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let end = number_end(&chars, i);
            let text: String = chars[i..end].iter().collect();
            let v = parse_number(&text).map_err(|e| ParseError {
                column,
                message: format!("bad number '{text}': {e}"),
            })?;
            out.push((Tok::Num(v), column));
            i = end;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Name(chars[start..i].iter().collect()), column));
        } else if "+-*/^()".contains(c) {
            out.push((Tok::Sym(c), column));
            i += 1;
        } else {
            return Err(ParseError {
                column,
                message: format!("unexpected character '{}'", c.escape_debug()),
            });
        }
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

/// An operator waiting on the parser's stack for its right operand.
#[derive(Clone, Copy)]
enum Pending {
    Neg,
    Bin(BinOp),
    /// An open parenthesis.
    Open,
    /// A call's open parenthesis.
    Call(Func),
}

/// The shunting-yard state: finished operands and waiting operators.
struct Parser {
    nodes: Vec<Node>,
    operands: Vec<usize>,
    pending: Vec<Pending>,
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Parser {
    fn push(&mut self, node: Node) {
        self.operands.push(self.nodes.len());
        self.nodes.push(node);
    }

    fn operand(&mut self) -> usize {
        self.operands
            .pop()
            .expect("the parser reduces an operator only after its operands")
    }

    fn variable(&mut self, name: String) -> Node {
        let next = self.names.len();
        let i = *self.index.entry(name.clone()).or_insert(next);
        if i == next {
            self.names.push(name);
        }
        Node::Var(i)
    }

    /// Applies the top pending operator (a `Neg` or `Bin`) to its operands.
    fn reduce(&mut self, op: Pending) {
        let node = match op {
            Pending::Neg => Node::Neg(self.operand()),
            Pending::Bin(op) => {
                let b = self.operand();
                Node::Bin(op, self.operand(), b)
            }
            Pending::Call(f) => Node::Call(f, self.operand()),
            Pending::Open => return,
        };
        self.push(node);
    }

    /// Reduces waiting operators that bind at least as tightly as `incoming`
    /// (strictly tighter for the right-associative `^`).
    fn reduce_for(&mut self, incoming: BinOp) {
        let p = incoming.precedence();
        while let Some(&top) = self.pending.last() {
            let q = match top {
                Pending::Neg => NEG_PRECEDENCE,
                Pending::Bin(op) => op.precedence(),
                Pending::Open | Pending::Call(_) => break,
            };
            if q > p || (q == p && incoming != BinOp::Pow) {
                self.pending.pop();
                self.reduce(top);
            } else {
                break;
            }
        }
    }

    /// Reduces up to the innermost open parenthesis and closes it; `false`
    /// if no parenthesis is open.
    fn close(&mut self) -> bool {
        while let Some(top) = self.pending.pop() {
            self.reduce(top);
            if matches!(top, Pending::Open | Pending::Call(_)) {
                return true;
            }
        }
        false
    }

    fn inside_parentheses(&self) -> bool {
        self.pending
            .iter()
            .any(|p| matches!(p, Pending::Open | Pending::Call(_)))
    }
}

/// Where the parser is: expecting an operand, or an operator after one.
#[derive(PartialEq)]
enum State {
    Operand,
    Operator,
}

fn error<T>(column: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        column,
        message: message.into(),
    })
}

/// Handles a token where an operand is expected; returns how many tokens it used.
fn operand_token(
    p: &mut Parser,
    tok: &Tok,
    next: Option<&Tok>,
    column: usize,
) -> Result<(usize, State), ParseError> {
    match tok {
        Tok::Num(v) => p.push(Node::Num(*v)),
        Tok::Name(n) if next == Some(&Tok::Sym('(')) => {
            let Some(f) = Func::from_name(n) else {
                return error(
                    column,
                    format!("unknown function '{n}' (known: {})", FUNCTIONS.join(", ")),
                );
            };
            p.pending.push(Pending::Call(f));
            return Ok((2, State::Operand));
        }
        Tok::Name(n) => {
            let v = p.variable(n.clone());
            p.push(v);
        }
        Tok::Sym('-') => {
            p.pending.push(Pending::Neg);
            return Ok((1, State::Operand));
        }
        Tok::Sym('(') => {
            p.pending.push(Pending::Open);
            return Ok((1, State::Operand));
        }
        Tok::Sym(c) => return error(column, format!("unexpected '{c}'")),
        Tok::End => return error(column, "unexpected end of expression"),
    }
    Ok((1, State::Operator))
}

/// Handles a token after an operand; `None` at the end of the expression.
fn operator_token(p: &mut Parser, tok: &Tok, column: usize) -> Result<Option<State>, ParseError> {
    let misplaced = |p: &Parser| {
        if p.inside_parentheses() {
            error(column, "expected ')'")
        } else {
            error(column, "unexpected text after the expression")
        }
    };
    match tok {
        Tok::Sym(')') if p.close() => Ok(Some(State::Operator)),
        Tok::Sym(c) => match BinOp::from_symbol(*c) {
            Some(op) => {
                p.reduce_for(op);
                p.pending.push(Pending::Bin(op));
                Ok(Some(State::Operand))
            }
            None => misplaced(p),
        },
        Tok::End if p.inside_parentheses() => error(column, "expected ')'"),
        Tok::End => {
            while let Some(top) = p.pending.pop() {
                p.reduce(top);
            }
            Ok(None)
        }
        Tok::Num(_) | Tok::Name(_) => misplaced(p),
    }
}

/// Parses an expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let toks = tokenize(src)?;
    let mut p = Parser {
        nodes: Vec::new(),
        operands: Vec::new(),
        pending: Vec::new(),
        names: Vec::new(),
        index: HashMap::new(),
    };
    let mut state = State::Operand;
    let mut i = 0;
    while i < toks.len() {
        let (tok, column) = &toks[i];
        if state == State::Operand {
            let (used, next) = operand_token(&mut p, tok, toks.get(i + 1).map(|t| &t.0), *column)?;
            i += used;
            state = next;
        } else {
            match operator_token(&mut p, tok, *column)? {
                Some(next) => state = next,
                None => break,
            }
            i += 1;
        }
    }
    debug_assert_eq!(p.operands.len(), 1, "a finished parse leaves one operand");
    Ok(Expr {
        nodes: p.nodes,
        names: p.names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(src: &str) -> String {
        parse(src).unwrap().to_string()
    }

    #[test]
    fn precedence_and_associativity_follow_the_usual_rules() {
        assert_eq!(show("1 + 2 * 3"), "1+(2*3)");
        assert_eq!(show("-x^2"), "-(x^2)");
        assert_eq!(show("2^3^2"), "2^(3^2)");
        assert_eq!(show("2^-1"), "2^(-1)");
        assert_eq!(show("2^-3^2"), "2^(-(3^2))");
        assert_eq!(show("2^-x*3"), "(2^(-x))*3");
        assert_eq!(show("-a-b"), "(-a)-b");
        assert_eq!(show("-a*b"), "(-a)*b");
        assert_eq!(show("a*-b"), "a*(-b)");
        assert_eq!(show("--x"), "-(-x)");
        assert_eq!(show("a - b - c"), "(a-b)-c");
        assert_eq!(show("a / b * c"), "(a/b)*c");
        assert_eq!(show("(a + b) * c"), "(a+b)*c");
        assert_eq!(show("tanh(w*x + b)"), "tanh((w*x)+b)");
        assert_eq!(show("exp(-(x))^2"), "exp(-x)^2");
        assert_eq!(
            parse("1.5e-3*x").unwrap().nodes(),
            [Node::Num(1.5e-3), Node::Var(0), Node::Bin(BinOp::Mul, 0, 1)]
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
        assert_eq!(
            parse("(x y)").unwrap_err().to_string(),
            "syntax error at column 4: expected ')'"
        );
        assert_eq!(
            parse("x)").unwrap_err().to_string(),
            "syntax error at column 2: unexpected text after the expression"
        );
        assert_eq!(
            parse("()").unwrap_err().to_string(),
            "syntax error at column 2: unexpected ')'"
        );
        assert_eq!(
            parse("").unwrap_err().to_string(),
            "syntax error at column 1: unexpected end of expression"
        );
        assert_eq!(
            parse("x + 1.2.3").unwrap_err().to_string(),
            "syntax error at column 5: bad number '1.2.3': not a number"
        );
    }

    #[test]
    fn numbers_that_do_not_fit_an_f64_are_errors() {
        let e = parse("x + 1e400").unwrap_err();
        assert_eq!(e.column, 5);
        assert!(
            e.message.starts_with("bad number '1e400': too large"),
            "{e}"
        );
        let long = "9".repeat(400);
        assert!(parse(&long).unwrap_err().message.contains("too large"));
        let e = parse("1e-400").unwrap_err();
        assert!(e.message.contains("it underflows to 0"), "{e}");
        assert_eq!(parse("0e-400").unwrap().nodes(), [Node::Num(0.0)]);
        assert_eq!(parse_number("-inf"), Ok(f64::NEG_INFINITY));
        assert!(parse_number("nan").unwrap().is_nan());
    }

    #[test]
    fn variables_are_listed_in_order_of_appearance() {
        assert_eq!(parse("w*x + b*w").unwrap().variables(), ["w", "x", "b"]);
    }

    #[test]
    fn nesting_depth_is_not_limited_by_the_stack() {
        // 200,000 levels of each kind: a recursive parser, printer, evaluator
        // or drop overflows the 2 MiB test-thread stack well before this.
        let n = 200_000;
        let parens = format!("{}x{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(parse(&parens).unwrap().to_string(), "x");
        let calls = format!("{}x{}", "exp(".repeat(n), ")".repeat(n));
        let e = parse(&calls).unwrap();
        assert_eq!(e.nodes().len(), n + 1);
        assert_eq!(e.eval(&[f64::NEG_INFINITY]), f64::INFINITY);
        assert_eq!(e.to_string().len(), 5 * n + 1);
        let minus = format!("{}x", "-".repeat(n + 1));
        let e = parse(&minus).unwrap();
        assert_eq!(e.eval(&[2.0]), -2.0);
        assert_eq!(e.text_lengths().last(), Some(&(3 * n + 2)));
        assert_eq!(e.to_string().len(), 3 * n + 2); // "-(" and ")" per level, "-x" inside
        let powers = vec!["x"; n].join("^");
        assert_eq!(parse(&powers).unwrap().eval(&[1.0]), 1.0);
        let unclosed = "(".repeat(n) + "x";
        assert_eq!(
            parse(&unclosed).unwrap_err().message,
            "expected ')'",
            "an unclosed parenthesis at any depth is reported"
        );
    }

    #[test]
    fn text_lengths_match_the_printed_sub_expressions() {
        let e = parse("-tanh(w*x + b)^2 / exp(-(x - 1.25)) + αβ").unwrap();
        let lengths = e.text_lengths();
        for (i, len) in lengths.iter().enumerate() {
            assert_eq!(e.text_of(i).chars().count(), *len, "{}", e.text_of(i));
        }
    }
}
