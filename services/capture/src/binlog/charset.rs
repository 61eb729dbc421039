//! Character data: from collation id to charset, and from charset bytes to UTF-8.
//!
//! Invariant: text is decoded exactly or not at all. Bytes that are not valid in the
//! column's charset are an error, never replaced; a charset without a decoder here is
//! an error naming it. MySQL's `latin1` is Windows-1252 (with the five undefined bytes
//! mapped to the C1 controls, as MySQL and the WHATWG decoder both do).

use std::collections::HashMap;

use encoding_rs::Encoding;

/// Charset of a collation id.
#[derive(Debug, Clone, Default)]
pub struct Collations {
    /// Ids learned from the source server's `information_schema.COLLATIONS`; these win
    /// over the built-in MySQL table (MariaDB numbers some collations differently).
    server: HashMap<u16, String>,
}

impl Collations {
    pub fn from_server(map: HashMap<u16, String>) -> Self {
        Collations { server: map }
    }

    pub fn charset(&self, id: u16) -> Option<String> {
        if let Some(cs) = self.server.get(&id) {
            return Some(cs.clone());
        }
        // MariaDB 10.10+ UCA-14.0 collations: 2048 + 256 * charset index + variant.
        if (2048..3328).contains(&id) {
            return Some(
                ["utf8mb3", "utf8mb4", "ucs2", "utf16", "utf32"][usize::from((id - 2048) / 256)]
                    .to_owned(),
            );
        }
        let c = mysql_common::collations::Collation::resolve(
            mysql_common::collations::CollationId::from(id),
        );
        let cs = c.charset();
        (!cs.is_empty()).then(|| cs.to_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CharsetError {
    #[error("charset `{0}` has no decoder in otter")]
    Unsupported(String),
    #[error("bytes are not valid {0}")]
    Invalid(String),
}

/// How a column's bytes become a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextCodec {
    /// charset `binary`: the value stays bytes.
    Binary,
    Utf8,
    Ascii,
    Utf16Be,
    Utf16Le,
    Utf32Be,
    Other(&'static Encoding),
}

impl TextCodec {
    pub fn for_charset(name: &str) -> Result<TextCodec, CharsetError> {
        Ok(match name {
            "binary" => TextCodec::Binary,
            "utf8" | "utf8mb3" | "utf8mb4" => TextCodec::Utf8,
            "ascii" => TextCodec::Ascii,
            "ucs2" | "utf16" => TextCodec::Utf16Be,
            "utf16le" => TextCodec::Utf16Le,
            "utf32" => TextCodec::Utf32Be,
            other => {
                let label = match other {
                    "latin1" => "windows-1252",
                    "latin2" => "iso-8859-2",
                    "latin5" => "windows-1254",
                    "latin7" => "iso-8859-13",
                    "greek" => "iso-8859-7",
                    "hebrew" => "iso-8859-8",
                    "cp1250" => "windows-1250",
                    "cp1251" => "windows-1251",
                    "cp1256" => "windows-1256",
                    "cp1257" => "windows-1257",
                    "cp866" => "ibm866",
                    "koi8r" => "koi8-r",
                    "koi8u" => "koi8-u",
                    "tis620" => "windows-874",
                    "macroman" => "macintosh",
                    "gbk" | "gb2312" => "gbk",
                    "gb18030" => "gb18030",
                    "big5" => "big5",
                    "sjis" | "cp932" => "shift_jis",
                    "ujis" | "eucjpms" => "euc-jp",
                    "euckr" => "euc-kr",
                    _ => return Err(CharsetError::Unsupported(other.to_owned())),
                };
                TextCodec::Other(
                    Encoding::for_label(label.as_bytes())
                        .ok_or_else(|| CharsetError::Unsupported(other.to_owned()))?,
                )
            }
        })
    }

    /// Decodes `bytes` to a string; `Binary` is not text and is refused here.
    pub fn decode(self, bytes: &[u8]) -> Result<String, CharsetError> {
        let invalid = |n: &str| CharsetError::Invalid(n.to_owned());
        match self {
            TextCodec::Binary => Err(invalid("text (charset binary)")),
            TextCodec::Utf8 => String::from_utf8(bytes.to_vec()).map_err(|_| invalid("utf8")),
            TextCodec::Ascii => {
                if bytes.is_ascii() {
                    Ok(String::from_utf8_lossy(bytes).into_owned())
                } else {
                    Err(invalid("ascii"))
                }
            }
            TextCodec::Utf16Be | TextCodec::Utf16Le => {
                if !bytes.len().is_multiple_of(2) {
                    return Err(invalid("utf16"));
                }
                let units = bytes.chunks_exact(2).map(|c| {
                    if self == TextCodec::Utf16Be {
                        u16::from_be_bytes([c[0], c[1]])
                    } else {
                        u16::from_le_bytes([c[0], c[1]])
                    }
                });
                char::decode_utf16(units)
                    .collect::<Result<String, _>>()
                    .map_err(|_| invalid("utf16"))
            }
            TextCodec::Utf32Be => {
                if !bytes.len().is_multiple_of(4) {
                    return Err(invalid("utf32"));
                }
                bytes
                    .chunks_exact(4)
                    .map(|c| {
                        char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                            .ok_or_else(|| invalid("utf32"))
                    })
                    .collect()
            }
            TextCodec::Other(enc) => enc
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(|c| c.into_owned())
                .ok_or_else(|| invalid(enc.name())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_is_cp1252_including_the_undefined_bytes() {
        let c = TextCodec::for_charset("latin1").expect("known");
        assert_eq!(
            c.decode(&[0x80, 0xe9, 0x81]).expect("all bytes map"),
            "\u{20ac}\u{e9}\u{81}"
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_replacement() {
        assert!(TextCodec::Utf8.decode(&[0xff, 0xfe]).is_err());
        assert!(TextCodec::Ascii.decode(&[0x80]).is_err());
    }

    #[test]
    fn collation_ids_resolve_to_charsets() {
        let c = Collations::default();
        assert_eq!(c.charset(8).as_deref(), Some("latin1"));
        assert_eq!(c.charset(63).as_deref(), Some("binary"));
        assert_eq!(c.charset(45).as_deref(), Some("utf8mb4"));
        assert_eq!(
            c.charset(2304 + 5).as_deref(),
            Some("utf8mb4"),
            "MariaDB uca1400"
        );
        assert!(TextCodec::for_charset("armscii8").is_err());
    }
}
