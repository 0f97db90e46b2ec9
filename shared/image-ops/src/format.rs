//! Image formats, and the one place where a format meets its file extension and its content
//! type. Upload allowlists, output keys, the CLI's "format from the file name" and the API's
//! "format of a stored source" all go through these functions.

use serde::{Deserialize, Serialize};

/// An accepted input format, as sniffed from magic bytes (never from a name or a header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
    /// AVIF stills (the primary image of an image sequence; see `decode`).
    Avif,
    /// HEIC/HEIF stills with HEVC images (what iPhones write). Not an output format: processed
    /// without an output format, it becomes JPEG.
    Heic,
}

impl InputFormat {
    /// Every accepted input format.
    pub const ALL: [InputFormat; 6] = [
        InputFormat::Jpeg,
        InputFormat::Png,
        InputFormat::Webp,
        InputFormat::Gif,
        InputFormat::Avif,
        InputFormat::Heic,
    ];

    /// The content type an upload of this format declares (the first of [`Self::content_types`]).
    pub fn content_type(self) -> &'static str {
        self.content_types()[0]
    }

    /// Every content type that names this format: HEIC is `image/heic` or `image/heif`.
    pub fn content_types(self) -> &'static [&'static str] {
        match self {
            InputFormat::Heic => &["image/heic", "image/heif"],
            InputFormat::Jpeg => &["image/jpeg"],
            InputFormat::Png => &["image/png"],
            InputFormat::Webp => &["image/webp"],
            InputFormat::Gif => &["image/gif"],
            InputFormat::Avif => &["image/avif"],
        }
    }

    /// The extension of an upload of this format.
    pub fn extension(self) -> &'static str {
        match self {
            InputFormat::Heic => "heic",
            other => OutputFormat::from_input(other).extension(),
        }
    }

    /// The input format a declared content type names (`image/jpeg`, case, parameters and
    /// surrounding spaces ignored; `image/jpg` is accepted for JPEG).
    pub fn from_content_type(content_type: &str) -> Option<InputFormat> {
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match mime.as_str() {
            "image/jpg" => Some(InputFormat::Jpeg),
            _ => InputFormat::ALL.into_iter().find(|f| f.content_types().contains(&mime.as_str())),
        }
    }

    /// The format of a stored object: from its content type, else from its key's extension
    /// (`jpg`, `jpeg`, `heic`, `heif`, ...).
    pub fn of_object(content_type: Option<&str>, key: &str) -> Option<InputFormat> {
        content_type.and_then(InputFormat::from_content_type).or_else(|| {
            let name = key.rsplit('/').next().unwrap_or(key);
            let (stem, ext) = name.rsplit_once('.')?;
            let ext = ext.trim().to_ascii_lowercase();
            match ext.as_str() {
                _ if stem.is_empty() => None,
                "heic" | "heif" => Some(InputFormat::Heic),
                _ => OutputFormat::from_extension(&ext).and_then(OutputFormat::as_input),
            }
        })
    }
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[serde(alias = "jpg")]
    Jpeg,
    Png,
    Webp,
    Gif,
    Avif,
}

impl OutputFormat {
    /// Every output format.
    pub const ALL: [OutputFormat; 5] =
        [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp, OutputFormat::Gif, OutputFormat::Avif];

    /// The name used in params (`"format": "webp"`).
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Gif => "gif",
            OutputFormat::Avif => "avif",
        }
    }

    /// The extension output keys and files get.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Gif => "gif",
            OutputFormat::Avif => "avif",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Gif => "image/gif",
            OutputFormat::Avif => "image/avif",
        }
    }

    /// The format a file extension names (`jpg`, `JPEG`, `webp`, ...; without the dot).
    pub fn from_extension(extension: &str) -> Option<OutputFormat> {
        let ext = extension.trim().to_ascii_lowercase();
        match ext.as_str() {
            "jpg" | "jpeg" => Some(OutputFormat::Jpeg),
            _ => OutputFormat::ALL.into_iter().find(|f| f.extension() == ext),
        }
    }

    /// The format a content type names (case and parameters such as `; charset` ignored;
    /// `image/jpg` is accepted for JPEG).
    pub fn from_content_type(content_type: &str) -> Option<OutputFormat> {
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match mime.as_str() {
            "image/jpg" => Some(OutputFormat::Jpeg),
            _ => OutputFormat::ALL.into_iter().find(|f| f.content_type() == mime),
        }
    }

    /// The output format for a stored source when none is asked for: the source's own (see
    /// [`InputFormat::of_object`]), JPEG for HEIC.
    pub fn of_object(content_type: Option<&str>, key: &str) -> Option<OutputFormat> {
        InputFormat::of_object(content_type, key).map(OutputFormat::from_input)
    }

    /// Whether the format can store an alpha channel.
    pub fn has_alpha(self) -> bool {
        !matches!(self, OutputFormat::Jpeg)
    }

    /// Whether the format can store an animation.
    pub fn can_animate(self) -> bool {
        matches!(self, OutputFormat::Webp | OutputFormat::Gif)
    }

    /// The output format matching an input format (used when `format` is not given): the
    /// same, but JPEG for HEIC (which browsers other than Safari cannot show).
    pub fn from_input(f: InputFormat) -> Self {
        match f {
            InputFormat::Jpeg | InputFormat::Heic => OutputFormat::Jpeg,
            InputFormat::Png => OutputFormat::Png,
            InputFormat::Webp => OutputFormat::Webp,
            InputFormat::Gif => OutputFormat::Gif,
            InputFormat::Avif => OutputFormat::Avif,
        }
    }

    /// The input format of the same name, if imgfn accepts it as input.
    fn as_input(self) -> Option<InputFormat> {
        match self {
            OutputFormat::Jpeg => Some(InputFormat::Jpeg),
            OutputFormat::Png => Some(InputFormat::Png),
            OutputFormat::Webp => Some(InputFormat::Webp),
            OutputFormat::Gif => Some(InputFormat::Gif),
            OutputFormat::Avif => Some(InputFormat::Avif),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_extensions_and_content_types_round_trip() {
        for f in OutputFormat::ALL {
            assert_eq!(OutputFormat::from_extension(f.extension()), Some(f));
            assert_eq!(OutputFormat::from_content_type(f.content_type()), Some(f));
        }
        for f in InputFormat::ALL {
            assert_eq!(InputFormat::from_content_type(f.content_type()), Some(f));
        }
        assert_eq!(OutputFormat::from_extension("JPEG"), Some(OutputFormat::Jpeg));
        assert_eq!(OutputFormat::from_content_type(" Image/JPG "), Some(OutputFormat::Jpeg));
        assert_eq!(OutputFormat::from_content_type("image/png; q=1"), Some(OutputFormat::Png));
        assert_eq!(OutputFormat::from_content_type("image/svg+xml"), None);
        assert_eq!(OutputFormat::from_extension("tiff"), None);
        let avif = OutputFormat::Avif;
        assert_eq!((avif.name(), avif.extension(), avif.content_type()), ("avif", "avif", "image/avif"));
        assert_eq!(InputFormat::from_content_type("image/avif"), Some(InputFormat::Avif));
        assert_eq!(InputFormat::from_content_type("image/heic"), Some(InputFormat::Heic));
        assert_eq!(InputFormat::from_content_type("Image/HEIF"), Some(InputFormat::Heic));
        assert_eq!(OutputFormat::from_content_type("image/heic"), None, "HEIC is not written");
        assert_eq!(OutputFormat::from_input(InputFormat::Heic), OutputFormat::Jpeg);
        assert_eq!(InputFormat::Heic.extension(), "heic");
        assert!(avif.has_alpha() && !avif.can_animate());
    }

    #[test]
    fn objects_are_typed_by_content_type_then_extension() {
        assert_eq!(OutputFormat::of_object(Some("image/png"), "a.jpg"), Some(OutputFormat::Png));
        assert_eq!(OutputFormat::of_object(Some("binary/octet-stream"), "x/a.JPG"), Some(OutputFormat::Jpeg));
        assert_eq!(OutputFormat::of_object(None, "a"), None);
        assert_eq!(OutputFormat::of_object(None, "dir.png/a"), None);
        assert_eq!(OutputFormat::of_object(None, "x/.png"), None);
        // A HEIC source is written as JPEG unless asked otherwise, by type or by name.
        assert_eq!(OutputFormat::of_object(Some("image/heif"), "a"), Some(OutputFormat::Jpeg));
        assert_eq!(InputFormat::of_object(None, "u/IMG_0001.HEIC"), Some(InputFormat::Heic));
        assert_eq!(OutputFormat::of_object(None, "u/IMG_0001.heic"), Some(OutputFormat::Jpeg));
    }
}
