//! The small XML WeCom speaks: one `<xml>` root with flat children (a few events nest a few
//! levels deeper), values in CDATA or plain text. Read with a streaming reader that refuses
//! DOCTYPE (so no entity can be declared, let alone expanded) and any entity reference other
//! than XML's five and character references.
//!
//! Space is bounded before anything else: nesting deeper than [`MAX_DEPTH`] or more than
//! [`MAX_ELEMENTS`] elements is refused as soon as the reader meets it, so the work and the
//! memory of a read are linear in the input and small (a field's name is its path, at most
//! `MAX_DEPTH` names long). An unauthenticated caller reaches [`encrypt_field`] only, which
//! stops at the first top-level `<Encrypt>`: the rest is read after the signature is checked.

use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// The deepest nesting accepted, counting the `<xml>` root. WeCom's deepest documented event
/// (`<xml><SendPicsInfo><PicList><item><PicMd5Sum>`) is 5 levels.
pub const MAX_DEPTH: usize = 8;
/// The most elements accepted in one document. WeCom's largest events carry a few dozen
/// fields; a picture list holds at most 9 items of one field each.
pub const MAX_ELEMENTS: usize = 512;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlError {
    /// Not the XML WeCom sends: not well-formed, a DOCTYPE, an entity, the wrong root.
    Malformed(String),
    /// Past [`MAX_DEPTH`] or [`MAX_ELEMENTS`] (named in the text).
    OverLimit(String),
}

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XmlError::Malformed(reason) | XmlError::OverLimit(reason) => f.write_str(reason),
        }
    }
}

/// The fields of a WeCom XML document, by name; nested ones as `Parent.Child`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fields(HashMap<String, String>);

impl Fields {
    /// Returns a field's value, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Returns the fields as a JSON object (sorted by name), for raw segments and history.
    pub fn to_json(&self) -> String {
        let sorted: std::collections::BTreeMap<&String, &String> = self.0.iter().collect();
        serde_json::to_string(&sorted).unwrap_or_default()
    }

    /// Returns a field's value, or `""` when absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }
}

/// Parses `xml` into its fields.
///
/// # Errors
/// Not well-formed, a DOCTYPE, an undeclared entity, a root other than `<xml>`, or over a limit.
pub fn parse(xml: &str) -> Result<Fields, XmlError> {
    let mut fields = HashMap::new();
    walk(xml, |path, name, value| {
        if !path.is_empty() {
            fields.insert(field_name(path, name), value);
        }
        Walk::Continue
    })?;
    if fields.is_empty() {
        return Err(XmlError::Malformed(
            "not WeCom XML: no `<xml>` fields".into(),
        ));
    }
    Ok(Fields(fields))
}

/// Returns the text of the first `<Encrypt>` directly under the root, reading no further than
/// it: the only part of a callback body an unauthenticated caller gets us to read.
///
/// # Errors
/// As [`parse`], for the part before `<Encrypt>`; no `<Encrypt>` at all.
pub fn encrypt_field(xml: &str) -> Result<String, XmlError> {
    let mut found = None;
    walk(xml, |path, name, value| {
        // `path` holds the parents, `["xml"]` for a child of the root.
        if path.len() == 1 && name == "Encrypt" {
            found = Some(value);
            return Walk::Stop;
        }
        Walk::Continue
    })?;
    found.ok_or_else(|| XmlError::Malformed("no `<Encrypt>` in the body".into()))
}

/// What [`walk`]'s visitor wants next.
enum Walk {
    Continue,
    Stop,
}

/// Streams `xml`, calling `visit(parents, name, text)` at the end of every element below the
/// root, within the limits. An element's text is what stands after its last child (all of it,
/// for a leaf), so no text is given to more than one element.
// Long on purpose: one loop over the reader's events, each arm enforcing a limit (depth,
// element count, text size) on the spot; split, the limits would be checked far from where
// the bytes are read.
fn walk(xml: &str, mut visit: impl FnMut(&[String], &str, String) -> Walk) -> Result<(), XmlError> {
    let malformed = |reason: String| XmlError::Malformed(reason);
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut value = String::new();
    let mut elements = 0usize;
    let mut count = |start: &BytesStart<'_>, depth: usize| -> Result<String, XmlError> {
        elements += 1;
        if elements > MAX_ELEMENTS {
            return Err(XmlError::OverLimit(format!(
                "XML over the limit of {MAX_ELEMENTS} elements"
            )));
        }
        if depth > MAX_DEPTH {
            return Err(XmlError::OverLimit(format!(
                "XML nested deeper than the limit of {MAX_DEPTH} levels"
            )));
        }
        Ok(start.local_name().as_ref().to_string())
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|error| malformed(format!("malformed XML: {error}")))?;
        match event {
            Event::DocType(_) => {
                return Err(malformed(
                    "XML with a DOCTYPE (entity declarations are refused)".into(),
                ));
            }
            Event::Start(start) => {
                let name = count(&start, path.len() + 1)?;
                if path.is_empty() && name != "xml" {
                    return Err(malformed(format!(
                        "root element is `<{name}>`, expected `<xml>`"
                    )));
                }
                path.push(name);
                value.clear();
            }
            Event::Empty(start) => {
                if path.is_empty() {
                    return Err(malformed("empty document root".into()));
                }
                let name = count(&start, path.len() + 1)?;
                if let Walk::Stop = visit(&path, &name, String::new()) {
                    return Ok(());
                }
            }
            Event::Text(_) if path.is_empty() => {
                return Err(malformed("not XML: text outside the `<xml>` root".into()));
            }
            Event::Text(text) => value.push_str(&text.xml10_content()),
            Event::CData(data) => value.push_str(&data.xml10_content()),
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => ch,
                    Ok(None) => predefined(&reference.xml10_content()).ok_or_else(|| {
                        malformed(format!(
                            "undeclared entity `&{};` (entities are refused)",
                            reference.xml10_content()
                        ))
                    })?,
                    Err(error) => {
                        return Err(malformed(format!("bad character reference: {error}")));
                    }
                };
                value.push(resolved);
            }
            Event::End(_) => {
                let Some(name) = path.pop() else {
                    return Err(malformed("unbalanced end tag".into()));
                };
                // A parent's value is its own text only (none, in WeCom's XML): its children's
                // text was given to them, and is not copied up again.
                if !path.is_empty()
                    && let Walk::Stop = visit(&path, &name, std::mem::take(&mut value))
                {
                    return Ok(());
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
        }
    }
    if !path.is_empty() {
        return Err(malformed("XML ends inside an element".into()));
    }
    Ok(())
}

fn field_name(parents: &[String], name: &str) -> String {
    // parents[0] is the `xml` root.
    let mut names: Vec<&str> = parents[1..].iter().map(String::as_str).collect();
    names.push(name);
    names.join(".")
}

fn predefined(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => return None,
    })
}

/// Escapes `text` for a CDATA section (splitting any `]]>` it contains).
pub fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}
