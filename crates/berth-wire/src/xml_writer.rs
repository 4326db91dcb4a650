//! A minimal writer for query-protocol XML responses (EC2, ELBv2, IAM...).
//! Element names are static strings from the service models; all text goes
//! through [`xml_escape`]. Each service supplies its own envelope: the
//! prologue written first and the epilogue [`XmlWriter::finish`] appends.

use crate::query::xml_escape;

pub struct XmlWriter {
    out: String,
    epilogue: String,
}

impl XmlWriter {
    pub fn new(prologue: &str, epilogue: String) -> XmlWriter {
        let mut out = String::with_capacity(2048);
        out.push_str(prologue);
        XmlWriter { out, epilogue }
    }

    pub fn open(&mut self, tag: &str) -> &mut XmlWriter {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut XmlWriter {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// `<tag/>`: an empty list, which SDKs read as `[]`.
    pub fn empty(&mut self, tag: &str) -> &mut XmlWriter {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push_str("/>");
        self
    }

    pub fn text(&mut self, tag: &str, value: &str) -> &mut XmlWriter {
        self.open(tag);
        self.out.push_str(&xml_escape(value));
        self.close(tag)
    }

    pub fn opt(&mut self, tag: &str, value: Option<&str>) -> &mut XmlWriter {
        if let Some(v) = value {
            self.text(tag, v);
        }
        self
    }

    pub fn num(&mut self, tag: &str, value: impl std::fmt::Display) -> &mut XmlWriter {
        self.text(tag, &value.to_string())
    }

    pub fn bool(&mut self, tag: &str, value: bool) -> &mut XmlWriter {
        self.text(tag, if value { "true" } else { "false" })
    }

    /// A list: `<tag>` + one `<item_tag>` per element + `</tag>`, or `<tag/>`
    /// when there are none.
    pub fn list<T>(
        &mut self,
        tag: &str,
        item_tag: &str,
        items: &[T],
        mut each: impl FnMut(&mut XmlWriter, &T),
    ) -> &mut XmlWriter {
        if items.is_empty() {
            return self.empty(tag);
        }
        self.open(tag);
        for item in items {
            self.open(item_tag);
            each(self, item);
            self.close(item_tag);
        }
        self.close(tag)
    }

    /// EC2's lists: `<item>` elements.
    pub fn items<T>(&mut self, tag: &str, items: &[T], each: impl FnMut(&mut XmlWriter, &T)) -> &mut XmlWriter {
        self.list(tag, "item", items, each)
    }

    /// The other query protocols' lists: `<member>` elements.
    pub fn members<T>(&mut self, tag: &str, items: &[T], each: impl FnMut(&mut XmlWriter, &T)) -> &mut XmlWriter {
        self.list(tag, "member", items, each)
    }

    /// A list of strings as `<member>` elements.
    pub fn strings(&mut self, tag: &str, items: &[String]) -> &mut XmlWriter {
        self.members(tag, items, |x, s| x.out.push_str(&xml_escape(s)))
    }

    pub fn finish(mut self) -> String {
        self.out.push_str(&self.epilogue);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_escaped_elements_lists_and_the_envelope() {
        let mut x = XmlWriter::new("<R>", "</R>".into());
        x.text("a", "<&>").num("n", 3).bool("b", true).opt("o", None);
        x.members("l", &[1, 2], |x, v| {
            x.num("v", v);
        });
        x.items("e", &[] as &[u8], |_, _| {});
        x.strings("s", &["x".to_string()]);
        assert_eq!(
            x.finish(),
            "<R><a>&lt;&amp;&gt;</a><n>3</n><b>true</b><l><member><v>1</v></member><member><v>2</v></member></l><e/><s><member>x</member></s></R>"
        );
    }
}
