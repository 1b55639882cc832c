//! The Prometheus text exposition format, read tolerantly: samples with their labels, and the families an
//! exposition mentions (a sample, or a `# TYPE`/`# HELP` line).

use std::collections::BTreeSet;

/// One sample of a text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name, with its `_bucket`/`_sum`/`_count` suffix if any.
    pub name: String,
    /// Labels in the order they appeared, values unescaped.
    pub labels: Vec<(String, String)>,
    /// The value (`+Inf`, `-Inf` and `NaN` included).
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, if present.
    #[must_use]
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| label == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Parses a Prometheus text exposition, tolerantly: comments and blank lines are skipped, a line that does not
/// parse is skipped, timestamps and exemplars are ignored. Never panics.
#[must_use]
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

pub(crate) fn not_exposition() -> crate::AdapterError {
    crate::AdapterError::invalid_response("metrics body is not prometheus text exposition")
}

/// The sample names of the exposition and the families its `# TYPE` and `# HELP` lines declare (a declared
/// histogram or summary `x` also declares `x_bucket`, `x_sum` and `x_count`).
pub(crate) fn mentioned_families(text: &str, samples: &[Sample]) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = samples.iter().map(|sample| sample.name.clone()).collect();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#") {
            continue;
        }
        let (Some(keyword @ ("TYPE" | "HELP")), Some(name)) = (words.next(), words.next()) else {
            continue;
        };
        names.insert(name.to_owned());
        if keyword == "TYPE" && matches!(words.next(), Some("histogram" | "summary")) {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

pub(crate) fn has_content(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        !line.is_empty() && !line.starts_with('#')
    })
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .char_indices()
        .find(|&(index, c)| !is_name_char(c, index == 0))
        .map_or(line.len(), |(index, _)| index);
    if name_end == 0 {
        return None;
    }
    let name = &line[..name_end];
    let mut rest = line[name_end..].trim_start();
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let (parsed, remainder) = parse_labels(after_brace)?;
        labels = parsed;
        rest = remainder;
    }
    let value_token = rest.split_whitespace().next()?;
    let value = parse_value(value_token)?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

/// Parses `name="value",…}` and returns the labels and what follows the closing brace.
fn parse_labels(mut input: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        input = input.trim_start();
        if let Some(rest) = input.strip_prefix('}') {
            return Some((labels, rest));
        }
        let name_end = input
            .char_indices()
            .find(|&(index, c)| !is_name_char(c, index == 0) || c == ':')
            .map_or(input.len(), |(index, _)| index);
        if name_end == 0 {
            return None;
        }
        let name = input[..name_end].to_owned();
        input = input[name_end..].trim_start().strip_prefix('=')?;
        input = input.trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = input.char_indices();
        let end = loop {
            let (index, c) = chars.next()?;
            match c {
                '"' => break index,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                other => value.push(other),
            }
        };
        labels.push((name, value));
        input = input[end + 1..].trim_start();
        if let Some(rest) = input.strip_prefix(',') {
            input = rest;
        } else if !input.starts_with('}') {
            return None;
        }
    }
}

pub(crate) fn parse_value(token: &str) -> Option<f64> {
    match token {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => token.parse::<f64>().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_handles_labels_escapes_specials_timestamps_and_exemplars() {
        let text = r#"
# HELP demo_http_requests_total Requests.
# TYPE demo_http_requests_total counter
demo_http_requests_total{route="/checkout",method="POST",status="500",source="user"} 12 1700000000000
demo_http_errors_total{error="say \"hi\"\\n",route="/a",} 3 # {trace_id="abc"} 1.0
up 1
bucket{le="+Inf"} +Inf
weird NaN
broken{le="1" 4
  spaced_metric   { a = "b" }   7
"#;
        let samples = parse_exposition(text);
        assert_eq!(samples.len(), 6, "{samples:?}");
        assert_eq!(samples[0].label("status"), Some("500"));
        assert_eq!(samples[0].value, 12.0);
        assert_eq!(samples[1].label("error"), Some("say \"hi\"\\n"));
        assert_eq!(samples[1].value, 3.0);
        assert_eq!(samples[2].name, "up");
        assert_eq!(samples[3].label("le"), Some("+Inf"));
        assert_eq!(samples[3].value, f64::INFINITY);
        assert!(samples[4].value.is_nan());
        assert_eq!(samples[5].name, "spaced_metric");
        assert_eq!(samples[5].label("a"), Some("b"));
    }
}
