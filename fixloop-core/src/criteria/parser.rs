//! Lexer and recursive-descent parser of the criteria language, with bounded input length and nesting depth.
//!
//! Tokens borrow from the source (a string literal is copied only when it holds an escape), so lexing allocates
//! only the token list, and the parser copies just the names and strings the expression keeps.

use std::borrow::Cow;

use super::{
    CompareOp, Expr, Literal, MAX_DEPTH, MAX_LIST_LEN, MAX_PATH_SEGMENTS, MAX_SOURCE_LEN,
    ParseError, PathSegment, Predicate, Subject,
};

/// Parses a whole source into an expression.
pub(super) fn parse(source: &str) -> Result<Expr, ParseError> {
    if source.len() > MAX_SOURCE_LEN {
        return Err(error_at(
            source,
            MAX_SOURCE_LEN,
            format!(
                "criteria are {} bytes long, the limit is {MAX_SOURCE_LEN}",
                source.len()
            ),
        ));
    }
    let tokens = lex(source)?;
    let mut parser = Parser {
        source,
        tokens,
        position: 0,
        depth: 0,
    };
    let expr = parser.or_expr()?;
    match parser.peek() {
        Token::End => Ok(expr),
        _ => Err(parser.unexpected("`&&`, `||` or the end of the criteria")),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token<'a> {
    Name(&'a str),
    Number { value: f64, text: &'a str },
    String(Cow<'a, str>),
    LeftParen,
    RightParen,
    LeftBracket,
    RightBracket,
    Comma,
    Dot,
    Bang,
    AndAnd,
    OrOr,
    Compare(CompareOp),
    End,
}

impl Token<'_> {
    fn describe(&self) -> String {
        match self {
            Self::Name(name) => format!("`{name}`"),
            Self::Number { text, .. } => format!("number `{text}`"),
            Self::String(_) => "a string".to_owned(),
            Self::LeftParen => "`(`".to_owned(),
            Self::RightParen => "`)`".to_owned(),
            Self::LeftBracket => "`[`".to_owned(),
            Self::RightBracket => "`]`".to_owned(),
            Self::Comma => "`,`".to_owned(),
            Self::Dot => "`.`".to_owned(),
            Self::Bang => "`!`".to_owned(),
            Self::AndAnd => "`&&`".to_owned(),
            Self::OrOr => "`||`".to_owned(),
            Self::Compare(op) => format!("`{op}`"),
            Self::End => "the end of the criteria".to_owned(),
        }
    }
}

fn error_at(source: &str, offset: usize, message: String) -> ParseError {
    let offset = offset.min(source.len());
    // Offsets always sit on a char boundary; fall back to a byte count if not, rather than panic.
    let column = source
        .get(..offset)
        .map_or(offset, |prefix| prefix.chars().count())
        + 1;
    ParseError {
        offset,
        column,
        message,
    }
}

fn lex(source: &str) -> Result<Vec<(Token<'_>, usize)>, ParseError> {
    let bytes = source.as_bytes();
    // About one token per four bytes in typical criteria; one allocation instead of a series of regrowths.
    let mut tokens = Vec::with_capacity(source.len() / 4 + 2);
    let mut index = 0;
    while index < bytes.len() {
        let start = index;
        let byte = bytes[index];
        let two = bytes.get(index + 1).copied();
        let token = match byte {
            b' ' | b'\t' | b'\n' | b'\r' => {
                index += 1;
                continue;
            }
            b'(' => Token::LeftParen,
            b')' => Token::RightParen,
            b'[' => Token::LeftBracket,
            b']' => Token::RightBracket,
            b',' => Token::Comma,
            b'.' => Token::Dot,
            b'&' if two == Some(b'&') => Token::AndAnd,
            b'|' if two == Some(b'|') => Token::OrOr,
            b'=' if two == Some(b'=') => Token::Compare(CompareOp::Eq),
            b'!' if two == Some(b'=') => Token::Compare(CompareOp::Ne),
            b'<' if two == Some(b'=') => Token::Compare(CompareOp::Le),
            b'>' if two == Some(b'=') => Token::Compare(CompareOp::Ge),
            b'!' => Token::Bang,
            b'<' => Token::Compare(CompareOp::Lt),
            b'>' => Token::Compare(CompareOp::Gt),
            b'&' => {
                return Err(error_at(
                    source,
                    start,
                    "expected `&&`, found `&`".to_owned(),
                ));
            }
            b'|' => {
                return Err(error_at(
                    source,
                    start,
                    "expected `||`, found `|`".to_owned(),
                ));
            }
            b'=' => {
                return Err(error_at(
                    source,
                    start,
                    "expected `==`, found `=` (use `==` to compare)".to_owned(),
                ));
            }
            b'"' => {
                let (value, end) = lex_string(source, start)?;
                tokens.push((Token::String(value), start));
                index = end;
                continue;
            }
            b'-' | b'0'..=b'9' => {
                let (token, end) = lex_number(source, start)?;
                tokens.push((token, start));
                index = end;
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let mut end = start + 1;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || matches!(bytes[end], b'_' | b'-'))
                {
                    end += 1;
                }
                tokens.push((Token::Name(&source[start..end]), start));
                index = end;
                continue;
            }
            _ => {
                let found = source[start..].chars().next().unwrap_or('?');
                return Err(error_at(
                    source,
                    start,
                    format!("unexpected character {found:?}"),
                ));
            }
        };
        index += match token {
            Token::AndAnd
            | Token::OrOr
            | Token::Compare(CompareOp::Eq | CompareOp::Ne | CompareOp::Le | CompareOp::Ge) => 2,
            _ => 1,
        };
        tokens.push((token, start));
    }
    tokens.push((Token::End, source.len()));
    Ok(tokens)
}

/// Lexes a string starting at the opening quote; returns the value and the offset after the closing quote.
/// A string without escapes is borrowed from the source.
fn lex_string(source: &str, start: usize) -> Result<(Cow<'_, str>, usize), ParseError> {
    let body = &source[start + 1..];
    if let Some(end) = body.find(['"', '\\'])
        && body.as_bytes()[end] == b'"'
    {
        return Ok((Cow::Borrowed(&body[..end]), start + 1 + end + 1));
    }
    let mut value = String::new();
    let mut chars = source[start + 1..].char_indices();
    while let Some((relative, c)) = chars.next() {
        let at = start + 1 + relative;
        match c {
            '"' => return Ok((Cow::Owned(value), at + 1)),
            '\\' => match chars.next() {
                Some((_, '"')) => value.push('"'),
                Some((_, '\\')) => value.push('\\'),
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, 'u')) => {
                    if !matches!(chars.next(), Some((_, '{'))) {
                        return Err(error_at(source, at, "expected `{` after `\\u`".to_owned()));
                    }
                    let mut code: u32 = 0;
                    let mut digits = 0;
                    loop {
                        match chars.next() {
                            Some((_, '}')) if digits > 0 => break,
                            Some((_, c)) if c.is_ascii_hexdigit() && digits < 6 => {
                                code = code * 16 + c.to_digit(16).unwrap_or(0);
                                digits += 1;
                            }
                            _ => {
                                return Err(error_at(
                                    source,
                                    at,
                                    "malformed `\\u{...}` escape (1 to 6 hex digits)".to_owned(),
                                ));
                            }
                        }
                    }
                    match char::from_u32(code) {
                        Some(c) => value.push(c),
                        None => {
                            return Err(error_at(
                                source,
                                at,
                                format!("`\\u{{{code:x}}}` is not a unicode scalar value"),
                            ));
                        }
                    }
                }
                Some((_, other)) => {
                    return Err(error_at(
                        source,
                        at,
                        format!(
                            "unknown escape `\\{other}` (use \\\" \\\\ \\n \\t \\r or \\u{{hex}})"
                        ),
                    ));
                }
                None => break,
            },
            c => value.push(c),
        }
    }
    Err(error_at(source, start, "unterminated string".to_owned()))
}

/// Lexes a number starting at `start`; returns the token and the offset after it.
fn lex_number(source: &str, start: usize) -> Result<(Token<'_>, usize), ParseError> {
    let bytes = source.as_bytes();
    let mut end = start;
    let digits = |end: &mut usize| {
        let from = *end;
        while *end < bytes.len() && bytes[*end].is_ascii_digit() {
            *end += 1;
        }
        *end > from
    };
    if bytes[end] == b'-' {
        end += 1;
    }
    if !digits(&mut end) {
        return Err(error_at(
            source,
            start,
            "expected digits after `-`".to_owned(),
        ));
    }
    if end < bytes.len() && bytes[end] == b'.' {
        end += 1;
        if !digits(&mut end) {
            return Err(error_at(
                source,
                end,
                "expected digits after the decimal point".to_owned(),
            ));
        }
    }
    if end < bytes.len() && matches!(bytes[end], b'e' | b'E') {
        end += 1;
        if end < bytes.len() && matches!(bytes[end], b'+' | b'-') {
            end += 1;
        }
        if !digits(&mut end) {
            return Err(error_at(
                source,
                end,
                "expected digits in the exponent".to_owned(),
            ));
        }
    }
    let text = &source[start..end];
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok((Token::Number { value, text }, end)),
        _ => Err(error_at(
            source,
            start,
            format!("number `{text}` is out of range"),
        )),
    }
}

struct Parser<'a> {
    source: &'a str,
    tokens: Vec<(Token<'a>, usize)>,
    position: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Token<'a> {
        self.tokens
            .get(self.position)
            .map_or(&Token::End, |(token, _)| token)
    }

    fn offset(&self) -> usize {
        self.tokens
            .get(self.position)
            .map_or(self.source.len(), |(_, offset)| *offset)
    }

    fn advance(&mut self) -> Token<'a> {
        let token = self.peek().clone();
        if self.position < self.tokens.len() {
            self.position += 1;
        }
        token
    }

    fn error(&self, message: String) -> ParseError {
        error_at(self.source, self.offset(), message)
    }

    fn unexpected(&self, expected: &str) -> ParseError {
        self.error(format!(
            "expected {expected}, found {}",
            self.peek().describe()
        ))
    }

    fn expect(&mut self, token: &Token<'_>, expected: &str) -> Result<(), ParseError> {
        if self.peek() == token {
            self.advance();
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("nesting is deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        Ok(())
    }

    fn or_expr(&mut self) -> Result<Expr, ParseError> {
        let first = self.and_expr()?;
        if *self.peek() != Token::OrOr {
            // A single operand needs no list.
            return Ok(first);
        }
        let mut operands = vec![first];
        while *self.peek() == Token::OrOr {
            self.advance();
            operands.push(self.and_expr()?);
        }
        Ok(Expr::Or(operands))
    }

    fn and_expr(&mut self) -> Result<Expr, ParseError> {
        let first = self.unary()?;
        if *self.peek() != Token::AndAnd {
            return Ok(first);
        }
        let mut operands = vec![first];
        while *self.peek() == Token::AndAnd {
            self.advance();
            operands.push(self.unary()?);
        }
        Ok(Expr::And(operands))
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            Token::Bang => {
                self.enter()?;
                self.advance();
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(inner)))
            }
            Token::LeftParen => {
                self.enter()?;
                self.advance();
                let inner = self.or_expr()?;
                self.expect(&Token::RightParen, "`)`, `&&` or `||`")?;
                self.depth -= 1;
                Ok(inner)
            }
            _ => self.predicate().map(Expr::Predicate),
        }
    }

    fn predicate(&mut self) -> Result<Predicate, ParseError> {
        let subject = self.subject()?;
        match self.peek().clone() {
            Token::Compare(op) => {
                self.advance();
                let value = self.literal()?;
                Ok(Predicate::Compare { subject, op, value })
            }
            Token::Name("in") => {
                self.advance();
                self.expect(&Token::LeftBracket, "`[` after `in`")?;
                let mut values = vec![self.literal()?];
                while *self.peek() == Token::Comma {
                    self.advance();
                    if values.len() >= MAX_LIST_LEN {
                        return Err(
                            self.error(format!("`in` lists hold at most {MAX_LIST_LEN} values"))
                        );
                    }
                    values.push(self.literal()?);
                }
                self.expect(&Token::RightBracket, "`,` or `]`")?;
                Ok(Predicate::In { subject, values })
            }
            Token::Name("contains") => {
                self.advance();
                let needle = self.literal()?;
                Ok(Predicate::Contains { subject, needle })
            }
            Token::Name("exists") => {
                self.advance();
                Ok(Predicate::Exists { subject })
            }
            _ => Err(self.unexpected(
                "an operator (`==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `contains` or `exists`)",
            )),
        }
    }

    fn subject(&mut self) -> Result<Subject, ParseError> {
        const EXPECTED: &str =
            "a subject (`status`, `latency_ms`, `body`, `header.<name>`, `json...` or `len(...)`)";
        let Token::Name(name) = self.peek().clone() else {
            return Err(self.unexpected(EXPECTED));
        };
        match name {
            "status" => {
                self.advance();
                Ok(Subject::Status)
            }
            "latency_ms" => {
                self.advance();
                Ok(Subject::LatencyMs)
            }
            "body" => {
                self.advance();
                Ok(Subject::Body)
            }
            "header" => {
                self.advance();
                self.expect(&Token::Dot, "`.` and a header name after `header`")?;
                match self.advance() {
                    Token::Name(header) => Ok(Subject::Header(header.to_ascii_lowercase())),
                    _ => {
                        self.position -= 1;
                        Err(self.unexpected("a header name"))
                    }
                }
            }
            "json" => {
                self.advance();
                self.json_path().map(Subject::Json)
            }
            "len" => {
                self.advance();
                self.enter()?;
                self.expect(&Token::LeftParen, "`(` after `len`")?;
                let inner = self.subject()?;
                self.expect(&Token::RightParen, "`)`")?;
                self.depth -= 1;
                Ok(Subject::Len(Box::new(inner)))
            }
            _ => Err(self.unexpected(EXPECTED)),
        }
    }

    fn json_path(&mut self) -> Result<Vec<PathSegment>, ParseError> {
        let mut path = Vec::new();
        loop {
            let segment = match self.peek() {
                Token::Dot => {
                    self.advance();
                    match self.advance() {
                        Token::Name(key) => PathSegment::Key(key.to_owned()),
                        _ => {
                            self.position -= 1;
                            return Err(self.unexpected(
                                "a key name after `.` (use `[\"...\"]` for other keys)",
                            ));
                        }
                    }
                }
                Token::LeftBracket => {
                    self.advance();
                    let segment = match self.advance() {
                        Token::String(key) => PathSegment::Key(key.into_owned()),
                        Token::Number { text, .. }
                            if text.bytes().all(|b| b.is_ascii_digit()) && text.len() <= 9 =>
                        {
                            PathSegment::Index(text.parse().unwrap_or(usize::MAX))
                        }
                        _ => {
                            self.position -= 1;
                            return Err(self.unexpected(
                                "an array index (0 to 999999999) or a quoted key inside `[...]`",
                            ));
                        }
                    };
                    self.expect(&Token::RightBracket, "`]`")?;
                    segment
                }
                _ => return Ok(path),
            };
            if path.len() >= MAX_PATH_SEGMENTS {
                return Err(self.error(format!(
                    "JSON paths hold at most {MAX_PATH_SEGMENTS} segments"
                )));
            }
            path.push(segment);
        }
    }

    fn literal(&mut self) -> Result<Literal, ParseError> {
        let literal = match self.peek() {
            Token::String(value) => Literal::String(value.clone().into_owned()),
            Token::Number { value, .. } => Literal::Number(*value),
            Token::Name("true") => Literal::Bool(true),
            Token::Name("false") => Literal::Bool(false),
            Token::Name("null") => Literal::Null,
            _ => {
                return Err(self
                    .unexpected("a literal (a \"string\", a number, `true`, `false` or `null`)"));
            }
        };
        self.advance();
        Ok(literal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_numbers_lex_as_numbers() {
        let tokens = lex("-1.5e3").unwrap();
        assert_eq!(
            tokens[0].0,
            Token::Number {
                value: -1500.0,
                text: "-1.5e3"
            }
        );
    }

    #[test]
    fn strings_without_escapes_are_borrowed_and_escapes_are_decoded() {
        let tokens = lex(r#""plain" "a\"b""#).unwrap();
        assert!(matches!(
            &tokens[0].0,
            Token::String(Cow::Borrowed("plain"))
        ));
        assert_eq!(tokens[1].0, Token::String(Cow::Owned("a\"b".to_owned())));
    }

    #[test]
    fn column_counts_characters_not_bytes() {
        let error = parse("body contains \"é\" && ?").unwrap_err();
        // `é` is two bytes but one character.
        assert_eq!(error.offset, 22);
        assert_eq!(error.column, 22);
    }

    #[test]
    fn huge_numbers_are_rejected() {
        let source = format!("status == 1{}", "0".repeat(400));
        let error = parse(&source).unwrap_err();
        assert!(error.message.contains("out of range"), "{error}");
    }
}
