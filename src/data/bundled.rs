//! The data sets shipped in the repository's `data/` folder.

use std::path::{Path, PathBuf};

use super::Dataset;
use super::csv::{Column, CsvLoader, Header, Labels};
use super::text::SourceFile;
use crate::error::{Error, Result};

/// The `data/` folder of the qfl source tree, fixed at compile time. [`Dataset::bundled`]
/// reads from it; [`Dataset::bundled_in`] takes another folder with the same layout.
pub const BUNDLED_DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data");

/// Names accepted by [`Dataset::bundled`], with what each one is.
///
/// | name | modalities (features) | samples | classes |
/// |---|---|---|---|
/// | `uci-mfeat` | `fou` 76, `fac` 216, `kar` 64, `pix` 240, `zer` 47, `mor` 6 | 2000 | 10 digits `0`..`9` |
/// | `basic-motions` | `dim_0`..`dim_5` 100 steps each | 80 (official train rows 0..40, then test) | 4: Standing, Running, Walking, Badminton |
/// | `basic-motions-train` / `-test` | as above | 40 each | as above |
/// | `nutrimouse-genotype` | `gene` 120, `lipid` 21 | 40 | 2: `wt`, `ppar` |
/// | `nutrimouse-diet` | `gene` 120, `lipid` 21 | 40 | 5: `coc`, `fish`, `lin`, `ref`, `sun` |
pub const BUNDLED: &[&str] = &[
    "uci-mfeat",
    "basic-motions",
    "basic-motions-train",
    "basic-motions-test",
    "nutrimouse-genotype",
    "nutrimouse-diet",
];

/// The `uci-mfeat` views in the order of the data set's documentation.
const MFEAT_VIEWS: [&str; 6] = ["fou", "fac", "kar", "pix", "zer", "mor"];

impl Dataset {
    /// A bundled data set by name (see [`BUNDLED`]), read from [`BUNDLED_DATA_DIR`].
    ///
    /// ```
    /// # fn main() -> qfl::Result<()> {
    /// let motions = qfl::Dataset::bundled("basic-motions")?;
    /// assert_eq!(motions.n_samples(), 80);
    /// assert_eq!(motions.class_counts(), [20, 20, 20, 20]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownDataset`] for a name not in [`BUNDLED`]; [`Error::Io`] naming the
    /// missing file if the folder is absent (an installed copy of qfl without its source
    /// tree): use [`Dataset::bundled_in`].
    pub fn bundled(name: &str) -> Result<Self> {
        Self::bundled_in(name, BUNDLED_DATA_DIR)
    }

    /// A bundled data set by name, read from `dir` (a folder laid out like the repository's
    /// `data/`: `uci-mfeat/`, `basic-motions/`, `nutrimouse/`).
    ///
    /// # Errors
    /// As [`Dataset::bundled`].
    pub fn bundled_in(name: &str, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let read = |rel: &str| read_bundled(dir, rel);
        let motions = |part: &str| -> Result<Dataset> {
            Dataset::from_ts(&read(&format!("basic-motions/BasicMotions_{part}.ts"))?)
        };
        let nutrimouse = |target: &str, classes: &[&str]| -> Result<Dataset> {
            let file = read(&format!("nutrimouse/{target}.csv"))?;
            CsvLoader::new(Labels::File {
                file,
                column: Column::Index(0),
            })
            .with_header(Header::Present)
            .with_classes(classes.iter().map(|s| s.to_string()).collect())
            .load(&[
                ("gene", read("nutrimouse/gene.csv")?),
                ("lipid", read("nutrimouse/lipid.csv")?),
            ])
        };
        match name {
            "uci-mfeat" => {
                let files = MFEAT_VIEWS
                    .iter()
                    .map(|v| Ok((*v, read(&format!("uci-mfeat/mfeat-{v}.csv"))?)))
                    .collect::<Result<Vec<_>>>()?;
                CsvLoader::new(Labels::Column(Column::Last))
                    .with_header(Header::Present)
                    .load(&files)
            }
            "basic-motions" => motions("TRAIN")?.concat(&motions("TEST")?),
            "basic-motions-train" => motions("TRAIN"),
            "basic-motions-test" => motions("TEST"),
            "nutrimouse-genotype" => nutrimouse("genotype", &["wt", "ppar"]),
            "nutrimouse-diet" => nutrimouse("diet", &["coc", "fish", "lin", "ref", "sun"]),
            _ => Err(Error::UnknownDataset {
                name: name.to_string(),
                known: BUNDLED.join(", "),
            }),
        }
    }
}

/// Reads `dir/rel`, explaining where bundled files are looked for if it is missing.
fn read_bundled(dir: &Path, rel: &str) -> Result<SourceFile> {
    let path: PathBuf = dir.join(rel);
    SourceFile::read(&path).map_err(|e| match e {
        Error::Io { path, reason } => Error::Io {
            path,
            reason: format!(
                "{reason} (bundled data sets are read from {}; pass the folder holding \
                 uci-mfeat/, basic-motions/ and nutrimouse/ to Dataset::bundled_in)",
                dir.display()
            ),
        },
        other => other,
    })
}
