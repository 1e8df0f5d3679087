//! The small XML WeCom speaks: one `<xml>` root with flat children (a few events nest one level
//! deeper), values in CDATA or plain text. Read into a field map with a streaming reader that
//! refuses DOCTYPE (so no entity can be declared, let alone expanded) and any entity reference
//! other than XML's five and character references.

use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::events::Event;

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
/// Not well-formed, a DOCTYPE, an undeclared entity, or a root other than `<xml>`.
pub fn parse(xml: &str) -> Result<Fields, String> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut value = String::new();
    let mut fields = HashMap::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|error| format!("malformed XML: {error}"))?;
        match event {
            Event::DocType(_) => {
                return Err("XML with a DOCTYPE (entity declarations are refused)".into());
            }
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_string();
                if path.is_empty() && name != "xml" {
                    return Err(format!("root element is `<{name}>`, expected `<xml>`"));
                }
                path.push(name);
                value.clear();
            }
            Event::Empty(start) => {
                if path.is_empty() {
                    return Err("empty document root".into());
                }
                let name = start.local_name().as_ref().to_string();
                fields.insert(field_name(&path, &name), String::new());
            }
            Event::Text(text) => value.push_str(&text.xml10_content()),
            Event::CData(data) => value.push_str(&data.xml10_content()),
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => ch,
                    Ok(None) => predefined(&reference.xml10_content()).ok_or_else(|| {
                        format!(
                            "undeclared entity `&{};` (entities are refused)",
                            reference.xml10_content()
                        )
                    })?,
                    Err(error) => return Err(format!("bad character reference: {error}")),
                };
                value.push(resolved);
            }
            Event::End(_) => {
                let Some(name) = path.pop() else {
                    return Err("unbalanced end tag".into());
                };
                if !path.is_empty() {
                    fields.insert(field_name(&path, &name), std::mem::take(&mut value));
                }
                // Parents of nested fields get the nested text too; only leaves matter.
                value.clear();
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
        }
    }
    if !path.is_empty() {
        return Err("XML ends inside an element".into());
    }
    if fields.is_empty() {
        return Err("not WeCom XML: no `<xml>` fields".into());
    }
    Ok(Fields(fields))
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
