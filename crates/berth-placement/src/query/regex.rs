//! A small regular-expression engine for `=~`: the part of Java's syntax
//! that attribute patterns use, matched against the whole value by a Pike VM
//! (time linear in the value, whatever the pattern).

use std::fmt;

/// Largest count allowed in `{n,m}`.
const MAX_REPEAT: u32 = 1000;
/// Largest compiled program.
const MAX_PROGRAM: usize = 10_000;

/// Why a pattern does not compile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("dangling meta character {0:?} near position {1}")]
    Dangling(char, usize),
    #[error("unclosed group")]
    UnclosedGroup,
    #[error("unmatched ')' near position {0}")]
    UnmatchedParen(usize),
    #[error("unclosed character class")]
    UnclosedClass,
    #[error("illegal repetition near position {0}")]
    IllegalRepetition(usize),
    #[error("illegal character range near position {0}")]
    IllegalRange(usize),
    #[error("unsupported construct {0:?}")]
    Unsupported(String),
    #[error("trailing backslash")]
    TrailingBackslash,
    #[error("the pattern is too large")]
    TooLarge,
}

/// A compiled pattern. Equality is by source text.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    prog: Vec<Inst>,
    /// `(?i)`: ASCII case-insensitive.
    fold: bool,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

#[derive(Clone, Debug)]
struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn matches(&self, c: char, fold: bool) -> bool {
        let hit = |c: char| self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
        let found =
            hit(c) || (fold && (hit(c.to_ascii_lowercase()) || hit(c.to_ascii_uppercase())));
        found != self.negated
    }
}

#[derive(Clone, Debug)]
enum Node {
    Empty,
    Char(char),
    Any,
    Class(Class),
    Start,
    End,
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
    },
}

#[derive(Clone, Debug)]
enum Inst {
    Char(char),
    Any,
    Class(Box<Class>),
    Start,
    End,
    Split(usize, usize),
    Jmp(usize),
    Match,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Pattern, PatternError> {
        let mut chars: Vec<char> = source.chars().collect();
        let mut fold = false;
        if chars.starts_with(&['(', '?', 'i', ')']) {
            fold = true;
            chars.drain(..4);
        }
        let mut p = RegexParser {
            chars: &chars,
            pos: 0,
        };
        let node = p.parse_alt()?;
        if p.pos < chars.len() {
            // Only an unmatched ')' stops the top-level alternation early.
            return Err(PatternError::UnmatchedParen(p.pos));
        }
        let mut c = Compiler { prog: Vec::new() };
        c.emit_node(&node)?;
        c.push(Inst::Match)?;
        Ok(Pattern {
            source: source.to_owned(),
            prog: c.prog,
            fold,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern matches the whole of `text`.
    pub fn is_match(&self, text: &str) -> bool {
        let n = self.prog.len();
        let fold = self.fold;
        let mut clist = Threads::new(n);
        let mut nlist = Threads::new(n);
        let len = text.chars().count();
        self.add(&mut clist, 0, 0, len);
        for (i, c) in text.chars().enumerate() {
            if clist.dense.is_empty() {
                return false;
            }
            nlist.clear();
            for k in 0..clist.dense.len() {
                let pc = clist.dense[k];
                let step = match &self.prog[pc] {
                    Inst::Char(x) => *x == c || (fold && x.eq_ignore_ascii_case(&c)),
                    Inst::Any => c != '\n' && c != '\r',
                    Inst::Class(class) => class.matches(c, fold),
                    _ => false,
                };
                if step {
                    self.add(&mut nlist, pc + 1, i + 1, len);
                }
            }
            std::mem::swap(&mut clist, &mut nlist);
        }
        clist
            .dense
            .iter()
            .any(|&pc| matches!(self.prog[pc], Inst::Match))
    }

    /// Adds the thread at `pc` and everything reachable from it without
    /// consuming a character.
    fn add(&self, list: &mut Threads, pc: usize, at: usize, len: usize) {
        let mut stack = vec![pc];
        while let Some(pc) = stack.pop() {
            if !list.insert(pc) {
                continue;
            }
            match self.prog[pc] {
                Inst::Jmp(t) => stack.push(t),
                Inst::Split(a, b) => {
                    stack.push(b);
                    stack.push(a);
                }
                Inst::Start if at == 0 => stack.push(pc + 1),
                Inst::End if at == len => stack.push(pc + 1),
                _ => {}
            }
        }
    }
}

/// A set of program counters that keeps insertion order (a sparse set).
struct Threads {
    dense: Vec<usize>,
    sparse: Vec<usize>,
}

impl Threads {
    fn new(n: usize) -> Threads {
        Threads {
            dense: Vec::with_capacity(n),
            sparse: vec![usize::MAX; n],
        }
    }

    fn insert(&mut self, pc: usize) -> bool {
        let slot = self.sparse[pc];
        if slot < self.dense.len() && self.dense[slot] == pc {
            return false;
        }
        self.sparse[pc] = self.dense.len();
        self.dense.push(pc);
        true
    }

    fn clear(&mut self) {
        self.dense.clear();
    }
}

struct RegexParser<'a> {
    chars: &'a [char],
    pos: usize,
}

impl RegexParser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn parse_alt(&mut self) -> Result<Node, PatternError> {
        let mut branches = vec![self.parse_concat()?];
        while self.peek() == Some('|') {
            self.pos += 1;
            branches.push(self.parse_concat()?);
        }
        Ok(if branches.len() == 1 {
            branches.swap_remove(0)
        } else {
            Node::Alt(branches)
        })
    }

    fn parse_concat(&mut self) -> Result<Node, PatternError> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.parse_atom()?;
            items.push(self.parse_quantifiers(atom)?);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.swap_remove(0),
            _ => Node::Concat(items),
        })
    }

    fn parse_atom(&mut self) -> Result<Node, PatternError> {
        let at = self.pos;
        let Some(c) = self.peek() else {
            return Ok(Node::Empty);
        };
        self.pos += 1;
        Ok(match c {
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '*' | '+' | '?' => return Err(PatternError::Dangling(c, at)),
            '{' => return Err(PatternError::IllegalRepetition(at)),
            '(' => {
                if self.peek() == Some('?') {
                    if self.chars.get(self.pos + 1) == Some(&':') {
                        self.pos += 2;
                    } else {
                        let construct: String = self.chars[at..].iter().take(4).collect();
                        return Err(PatternError::Unsupported(construct));
                    }
                }
                let inner = self.parse_alt()?;
                if self.peek() != Some(')') {
                    return Err(PatternError::UnclosedGroup);
                }
                self.pos += 1;
                inner
            }
            '[' => Node::Class(self.parse_class()?),
            '\\' => self.parse_escape()?,
            c => Node::Char(c),
        })
    }

    /// After a backslash: a predefined class, a control character or an
    /// escaped symbol.
    fn parse_escape(&mut self) -> Result<Node, PatternError> {
        let Some(c) = self.peek() else {
            return Err(PatternError::TrailingBackslash);
        };
        self.pos += 1;
        let class = |negated: bool, ranges: &[(char, char)]| {
            Node::Class(Class {
                negated,
                ranges: ranges.to_vec(),
            })
        };
        const DIGIT: &[(char, char)] = &[('0', '9')];
        const WORD: &[(char, char)] = &[('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')];
        const SPACE: &[(char, char)] = &[(' ', ' '), ('\t', '\r')];
        Ok(match c {
            'd' => class(false, DIGIT),
            'D' => class(true, DIGIT),
            'w' => class(false, WORD),
            'W' => class(true, WORD),
            's' => class(false, SPACE),
            'S' => class(true, SPACE),
            't' => Node::Char('\t'),
            'n' => Node::Char('\n'),
            'r' => Node::Char('\r'),
            'f' => Node::Char('\x0c'),
            'e' => Node::Char('\x1b'),
            c if c.is_ascii_alphanumeric() => {
                return Err(PatternError::Unsupported(format!("\\{c}")));
            }
            c => Node::Char(c),
        })
    }

    fn parse_class(&mut self) -> Result<Class, PatternError> {
        let mut negated = false;
        if self.peek() == Some('^') {
            negated = true;
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let at = self.pos;
            let Some(c) = self.peek() else {
                return Err(PatternError::UnclosedClass);
            };
            self.pos += 1;
            match c {
                ']' if !first => break,
                ']' => return Err(PatternError::UnclosedClass),
                '[' => {
                    return Err(PatternError::Unsupported(
                        "nested character class".to_owned(),
                    ));
                }
                '&' if self.peek() == Some('&') => {
                    return Err(PatternError::Unsupported(
                        "class intersection &&".to_owned(),
                    ));
                }
                _ => {}
            }
            first = false;
            let lo = if c == '\\' {
                match self.parse_escape()? {
                    Node::Char(ch) => ch,
                    Node::Class(inner) if !inner.negated => {
                        ranges.extend(inner.ranges);
                        continue;
                    }
                    _ => {
                        return Err(PatternError::Unsupported(
                            "negated class escape inside a class".to_owned(),
                        ));
                    }
                }
            } else {
                c
            };
            // A range `lo-hi`, unless the '-' is last in the class.
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&n| n != ']') {
                self.pos += 1;
                let hc = self.peek().ok_or(PatternError::UnclosedClass)?;
                self.pos += 1;
                let hi = if hc == '\\' {
                    match self.parse_escape()? {
                        Node::Char(ch) => ch,
                        _ => return Err(PatternError::IllegalRange(at)),
                    }
                } else {
                    hc
                };
                if hi < lo {
                    return Err(PatternError::IllegalRange(at));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Class { negated, ranges })
    }

    fn parse_quantifiers(&mut self, mut atom: Node) -> Result<Node, PatternError> {
        loop {
            let at = self.pos;
            let (min, max) = match self.peek() {
                Some('*') => (0, None),
                Some('+') => (1, None),
                Some('?') => (0, Some(1)),
                Some('{') => {
                    self.pos += 1;
                    let (min, max) = self.parse_braces(at)?;
                    // `parse_braces` consumed through '}'; undo the generic
                    // advance below.
                    self.pos -= 1;
                    (min, max)
                }
                _ => return Ok(atom),
            };
            self.pos += 1;
            if matches!(atom, Node::Start | Node::End | Node::Empty) {
                return Err(PatternError::Dangling(self.chars[at], at));
            }
            match self.peek() {
                // Lazy: the same answer for a whole-value match.
                Some('?') => self.pos += 1,
                Some('+') => {
                    return Err(PatternError::Unsupported(
                        "possessive quantifier".to_owned(),
                    ));
                }
                _ => {}
            }
            atom = Node::Repeat {
                node: Box::new(atom),
                min,
                max,
            };
        }
    }

    fn parse_braces(&mut self, at: usize) -> Result<(u32, Option<u32>), PatternError> {
        let number = |p: &mut Self| -> Option<u32> {
            let start = p.pos;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.pos += 1;
            }
            if p.pos == start {
                return None;
            }
            p.chars[start..p.pos]
                .iter()
                .collect::<String>()
                .parse()
                .ok()
        };
        let min = number(self).ok_or(PatternError::IllegalRepetition(at))?;
        let max = if self.peek() == Some(',') {
            self.pos += 1;
            if self.peek() == Some('}') {
                None
            } else {
                Some(number(self).ok_or(PatternError::IllegalRepetition(at))?)
            }
        } else {
            Some(min)
        };
        if self.peek() != Some('}') {
            return Err(PatternError::IllegalRepetition(at));
        }
        self.pos += 1;
        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT || m < min) {
            return Err(PatternError::IllegalRepetition(at));
        }
        Ok((min, max))
    }
}

struct Compiler {
    prog: Vec<Inst>,
}

impl Compiler {
    fn push(&mut self, inst: Inst) -> Result<usize, PatternError> {
        if self.prog.len() >= MAX_PROGRAM {
            return Err(PatternError::TooLarge);
        }
        self.prog.push(inst);
        Ok(self.prog.len() - 1)
    }

    fn emit_node(&mut self, node: &Node) -> Result<(), PatternError> {
        match node {
            Node::Empty => {}
            Node::Char(c) => {
                self.push(Inst::Char(*c))?;
            }
            Node::Any => {
                self.push(Inst::Any)?;
            }
            Node::Class(class) => {
                self.push(Inst::Class(Box::new(class.clone())))?;
            }
            Node::Start => {
                self.push(Inst::Start)?;
            }
            Node::End => {
                self.push(Inst::End)?;
            }
            Node::Concat(items) => {
                for item in items {
                    self.emit_node(item)?;
                }
            }
            Node::Alt(branches) => {
                // split L1, next; L1: branch; jmp end; next: split ...
                let mut jumps = Vec::new();
                for (i, branch) in branches.iter().enumerate() {
                    if i + 1 < branches.len() {
                        let split = self.push(Inst::Split(0, 0))?;
                        self.emit_node(branch)?;
                        jumps.push(self.push(Inst::Jmp(0))?);
                        let next = self.prog.len();
                        self.prog[split] = Inst::Split(split + 1, next);
                    } else {
                        self.emit_node(branch)?;
                    }
                }
                let end = self.prog.len();
                for j in jumps {
                    self.prog[j] = Inst::Jmp(end);
                }
            }
            Node::Repeat { node, min, max } => {
                for _ in 0..*min {
                    self.emit_node(node)?;
                }
                match max {
                    None => {
                        // L: split body, out; body; jmp L; out:
                        let split = self.push(Inst::Split(0, 0))?;
                        self.emit_node(node)?;
                        self.push(Inst::Jmp(split))?;
                        let out = self.prog.len();
                        self.prog[split] = Inst::Split(split + 1, out);
                    }
                    Some(max) => {
                        // Optional copies, each skipping to the end.
                        let mut splits = Vec::new();
                        for _ in *min..*max {
                            splits.push(self.push(Inst::Split(0, 0))?);
                            self.emit_node(node)?;
                        }
                        let out = self.prog.len();
                        for s in splits {
                            self.prog[s] = Inst::Split(s + 1, out);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
