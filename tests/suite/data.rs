//! Data sets: bundled loaders (shapes, counts, known values), file errors with their exact
//! line and field, errors-not-panics on mutated real files, few-shot splits, standardization.

use std::collections::HashSet;

use proptest::prelude::*;
use qfl::data::{
    BUNDLED, BUNDLED_DATA_DIR, Column, CsvLoader, FewShot, Header, Labels, SourceFile,
    Standardizer, derive_seed,
};
use qfl::{DataErrorKind, DataField, Dataset, Error, Modality};

use crate::common::proptest_config;

fn bundled(name: &str) -> Dataset {
    Dataset::bundled(name).unwrap_or_else(|e| panic!("bundled {name}: {e}"))
}

fn file(rel: &str) -> SourceFile {
    SourceFile::read(format!("{BUNDLED_DATA_DIR}/{rel}")).expect("bundled file")
}

fn row(d: &Dataset, modality: &str, i: usize) -> Vec<f64> {
    d.modality_by_name(modality)
        .unwrap()
        .row(i)
        .unwrap()
        .to_vec()
}

fn col(index: usize, name: Option<&str>) -> Option<DataField> {
    Some(DataField::Column {
        index,
        name: name.map(String::from),
    })
}

fn channel(channel: usize, step: Option<usize>) -> Option<DataField> {
    Some(DataField::Channel { channel, step })
}

/// The (line, field, kind) of an [`Error::Data`]; panics on anything else.
fn location(r: qfl::Result<Dataset>) -> (usize, Option<DataField>, DataErrorKind) {
    match r {
        Err(Error::Data {
            line, field, kind, ..
        }) => (line, field, kind),
        Err(e) => panic!("expected a data error, got {e}"),
        Ok(_) => panic!("expected a data error, got a data set"),
    }
}

// ---------- bundled data sets ----------

#[test]
fn uci_mfeat_shapes_and_values() {
    let d = bundled("uci-mfeat");
    assert_eq!(d.n_samples(), 2000);
    let shape: Vec<(&str, usize)> = d
        .modalities()
        .iter()
        .map(|m| (m.name(), m.n_features()))
        .collect();
    assert_eq!(
        shape,
        [
            ("fou", 76),
            ("fac", 216),
            ("kar", 64),
            ("pix", 240),
            ("zer", 47),
            ("mor", 6)
        ]
    );
    assert_eq!(
        d.class_names(),
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
    );
    assert_eq!(d.class_counts(), [200; 10]);
    // mfeat-mor.csv lines 2 and 2001; mfeat-fou.csv line 2.
    assert_eq!(row(&d, "mor", 0), [1.0, 0.0, 0.0, 133.15, 1.3117, 1620.2]);
    assert_eq!(
        row(&d, "mor", 1999),
        [1.0, 1.0, 1.0, 133.92, 1.5646, 3808.0]
    );
    assert_eq!(row(&d, "fou", 0)[..2], [0.065882, 0.19731]);
    assert_eq!(row(&d, "pix", 1999)[239], 0.0);
    assert_eq!((d.labels()[0], d.labels()[1999]), (0, 9));
}

#[test]
fn basic_motions_merged_and_official_split() {
    let d = bundled("basic-motions");
    assert_eq!((d.n_samples(), d.n_modalities()), (80, 6));
    assert!(d.modalities().iter().all(|m| m.n_features() == 100));
    assert_eq!(d.modality(0).unwrap().name(), "dim_0");
    assert_eq!(
        d.class_names(),
        ["Standing", "Running", "Walking", "Badminton"]
    );
    assert_eq!(d.class_counts(), [20; 4]);
    assert_eq!(row(&d, "dim_0", 0)[..2], [0.079106, 0.079106]);
    assert_eq!(row(&d, "dim_5", 0)[99], -0.03196);
    assert_eq!(row(&d, "dim_2", 39)[99], -0.362036);
    assert_eq!((d.labels()[0], d.labels()[39]), (0, 3));
    // Row 40 is the first line of the official test file.
    assert_eq!(row(&d, "dim_0", 40)[0], -0.740653);
    assert_eq!(d.labels()[40], 0);

    let train = bundled("basic-motions-train");
    let test = bundled("basic-motions-test");
    assert_eq!((train.n_samples(), test.n_samples()), (40, 40));
    assert_eq!(train, d.subset(&(0..40).collect::<Vec<_>>()).unwrap());
    assert_eq!(test, d.subset(&(40..80).collect::<Vec<_>>()).unwrap());
    assert_eq!(train.class_counts(), [10; 4]);
}

#[test]
fn nutrimouse_both_targets() {
    let g = bundled("nutrimouse-genotype");
    assert_eq!(g.n_samples(), 40);
    assert_eq!(
        g.modalities()
            .iter()
            .map(|m| (m.name(), m.n_features()))
            .collect::<Vec<_>>(),
        [("gene", 120), ("lipid", 21)]
    );
    assert_eq!(g.class_names(), ["wt", "ppar"]);
    assert_eq!(g.class_counts(), [20, 20]);
    assert_eq!(g.labels()[0], 0);
    assert_eq!(row(&g, "gene", 0)[..2], [-0.42, -0.65]);
    assert_eq!(row(&g, "gene", 39)[119], -0.36);
    assert_eq!(row(&g, "lipid", 0)[20], 10.39);

    let d = bundled("nutrimouse-diet");
    assert_eq!(d.class_names(), ["coc", "fish", "lin", "ref", "sun"]);
    assert_eq!(d.class_counts(), [8; 5]);
    assert_eq!((d.labels()[0], d.labels()[39]), (2, 4)); // "lin", "sun"
    assert_eq!(d.modalities(), g.modalities());
}

#[test]
fn every_bundled_name_loads_and_unknown_names_fail() {
    for name in BUNDLED {
        let d = bundled(name);
        assert!(d.n_samples() > 0 && d.n_classes() >= 2, "{name}");
    }
    let e = Dataset::bundled("mnist").unwrap_err();
    assert!(matches!(e, Error::UnknownDataset { .. }));
    assert!(e.to_string().contains("uci-mfeat"), "{e}");
}

#[test]
fn missing_bundled_folder_names_the_file() {
    let e = Dataset::bundled_in("nutrimouse-diet", "/nonexistent/qfl-data").unwrap_err();
    let Error::Io { path, reason } = &e else {
        panic!("expected Io, got {e}")
    };
    assert_eq!(path, "/nonexistent/qfl-data/nutrimouse/diet.csv");
    assert!(reason.contains("Dataset::bundled_in"), "{reason}");
    // The override folder is honoured.
    let d = Dataset::bundled_in("nutrimouse-diet", BUNDLED_DATA_DIR).unwrap();
    assert_eq!(d.n_samples(), 40);
}

// ---------- CSV loader ----------

fn csv(name: &str, text: &str) -> SourceFile {
    SourceFile::new(name, text)
}

fn last_col() -> CsvLoader {
    CsvLoader::new(Labels::Column(Column::Last))
}

#[test]
fn csv_handles_crlf_bom_blank_lines_quotes_and_detected_headers() {
    let a = csv(
        "a.csv",
        "\u{FEFF}\"x\",\"y, with comma\",label\r\n1,2,\"c\"\"at\"\r\n\r\n3, 4 ,dog\r\n",
    );
    let b = csv("b.csv", "5,cat\"\n6,dog\n"); // no header; unquoted field keeps its quote
    let err = last_col().load(&[("a", a.clone()), ("b", b)]).unwrap_err();
    // Labels differ between the files on the first row (c"at vs cat").
    assert_eq!(
        location(Err(err)),
        (1, col(2, None), DataErrorKind::RowMismatch)
    );
    let b = csv("b.csv", "5,\"c\"\"at\"\n6,dog\n");
    let d = last_col().load(&[("a", a), ("b", b)]).unwrap();
    assert_eq!(d.class_names(), ["c\"at", "dog"]);
    assert_eq!(d.modality(0).unwrap().values(), [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(d.modality(1).unwrap().values(), [5.0, 6.0]);
}

#[test]
fn csv_integer_labels_sort_numerically_and_declared_classes_keep_order() {
    let f = csv("n.csv", "1,10\n2,9\n3,2\n");
    let d = last_col()
        .with_header(Header::Absent)
        .load(&[("m", f.clone())])
        .unwrap();
    assert_eq!(d.class_names(), ["2", "9", "10"]);
    assert_eq!(d.labels(), [2, 1, 0]);
    let d = last_col()
        .with_classes(vec!["10".into(), "9".into(), "2".into(), "7".into()])
        .load(&[("m", f)])
        .unwrap();
    assert_eq!(d.labels(), [0, 1, 2]);
    assert_eq!(d.class_counts(), [1, 1, 1, 0]);
}

#[test]
fn csv_error_non_numeric_value_names_line_and_column() {
    let f = csv("t.csv", "a,b,label\n1,2,x\n3,oops,y\n");
    let e = last_col().load(&[("m", f)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.csv:3: column 2 (\"b\"): \"oops\" is not a finite number"
    );
    let f = csv("t.csv", "1,2,x\n3,inf,y\n");
    assert_eq!(
        location(last_col().load(&[("m", f)])),
        (2, col(2, None), DataErrorKind::NotANumber)
    );
}

#[test]
fn csv_error_wrong_field_count() {
    let f = csv("t.csv", "1,2,x\n3,4,y\n\n5,6\n");
    let e = last_col().load(&[("m", f)]).unwrap_err();
    assert_eq!(e.data_kind(), Some(DataErrorKind::FieldCount));
    assert_eq!(
        e.to_string(),
        "t.csv:4: column 3: 2 fields, but line 1 has 3"
    );
}

#[test]
fn csv_error_files_with_different_rows() {
    let a = csv("a.csv", "1,x\n2,y\n3,x\n");
    let b = csv("b.csv", "1,x\n2,y\n");
    let e = last_col()
        .load(&[("a", a.clone()), ("b", b.clone())])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "a.csv:3: data row 3 has no counterpart: b.csv has 2 data rows"
    );
    // Same whichever file comes first.
    let e = last_col().load(&[("b", b), ("a", a.clone())]).unwrap_err();
    assert!(e.to_string().starts_with("a.csv:3: "), "{e}");
    // Rows agree in count but not in label.
    let c = csv("c.csv", "7,x\n8,x\n9,x\n");
    let e = last_col().load(&[("a", a), ("c", c)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "c.csv:2: column 2: label \"x\" differs from \"y\" on line 2 of a.csv"
    );
}

#[test]
fn csv_error_unknown_class_and_missing_label_column() {
    let f = csv("t.csv", "v,label\n1,x\n2,z\n");
    let e = last_col()
        .with_classes(vec!["x".into(), "y".into()])
        .load(&[("m", f.clone())])
        .unwrap_err();
    assert_eq!(
        location(Err(e)),
        (3, col(2, Some("label")), DataErrorKind::UnknownClass)
    );
    let e = CsvLoader::new(Labels::Column(Column::Name("class".into())))
        .load(&[("m", f.clone())])
        .unwrap_err();
    assert_eq!(location(Err(e)), (1, None, DataErrorKind::Header));
    let e = CsvLoader::new(Labels::Column(Column::Index(5)))
        .load(&[("m", f)])
        .unwrap_err();
    assert_eq!(e.data_kind(), Some(DataErrorKind::Header));
}

#[test]
fn csv_error_empty_files() {
    for text in ["", "\n\n  \n", "a,b,label\n"] {
        let e = last_col()
            .with_header(Header::Present)
            .load(&[("m", csv("e.csv", text))])
            .unwrap_err();
        assert_eq!(
            location(Err(e)),
            (0, None, DataErrorKind::Empty),
            "{text:?}"
        );
    }
}

#[test]
fn csv_error_bad_bytes_and_quotes() {
    let f = SourceFile::new("b.csv", b"1,x\n2,\xff\n".to_vec());
    assert_eq!(
        location(last_col().load(&[("m", f)])),
        (2, None, DataErrorKind::Encoding)
    );
    let f = csv("q.csv", "1,x\n2,\"open\n");
    assert_eq!(
        location(last_col().load(&[("m", f)])),
        (2, col(2, None), DataErrorKind::Encoding)
    );
}

#[test]
fn csv_label_file_with_detected_header() {
    let feats = csv("f.csv", "g1,g2\n0.5,1\n0.25,2\n-1,3\n");
    let labels = csv("l.csv", "\"target\"\n\"wt\"\n\"ppar\"\n\"wt\"\n");
    let d = CsvLoader::new(Labels::File {
        file: labels,
        column: Column::Index(0),
    })
    .load(&[("genes", feats.clone())])
    .unwrap();
    assert_eq!(d.class_names(), ["ppar", "wt"]);
    assert_eq!(d.labels(), [1, 0, 1]);
    // A label file one row short: the error is at the first feature row without a label.
    let short = csv("l.csv", "target\nwt\nppar\n");
    let e = CsvLoader::new(Labels::File {
        file: short,
        column: Column::Last,
    })
    .with_header(Header::Present)
    .load(&[("genes", feats.clone())])
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "f.csv:4: data row 3 has no counterpart: l.csv has 2 data rows"
    );
    // Header::Absent makes the feature header line 1 data, which is not numeric.
    let e = CsvLoader::new(Labels::File {
        file: csv("l.csv", "wt\nppar\nwt\nwt\n"),
        column: Column::Last,
    })
    .with_header(Header::Absent)
    .load(&[("genes", feats)])
    .unwrap_err();
    assert_eq!(
        location(Err(e)),
        (1, col(1, None), DataErrorKind::NotANumber)
    );
}

#[test]
fn csv_reads_real_nutrimouse_files_by_path() {
    let dir = format!("{BUNDLED_DATA_DIR}/nutrimouse");
    let d = CsvLoader::new(Labels::File {
        file: file("nutrimouse/genotype.csv"),
        column: Column::Name("genotype".into()),
    })
    .read(&[
        ("lipid", format!("{dir}/lipid.csv").as_ref()),
        ("gene", format!("{dir}/gene.csv").as_ref()),
    ])
    .unwrap();
    assert_eq!(d.modality(0).unwrap().name(), "lipid");
    assert_eq!(d.class_names(), ["ppar", "wt"]);
    assert_eq!(d.class_counts(), [20, 20]);
}

// ---------- .ts loader ----------

const TOY_TS: &str = "# toy\n@problemName toy\n@dimensions 2\n@seriesLength 3\n@classLabel true up down\n@data\n1,2,3:4,5,6:up\n0,0,0:1,1,1:down\n";

fn ts(text: &str) -> qfl::Result<Dataset> {
    Dataset::from_ts(&SourceFile::new("toy.ts", text))
}

#[test]
fn ts_toy_file_parses() {
    let d = ts(TOY_TS).unwrap();
    assert_eq!((d.n_samples(), d.n_modalities(), d.n_classes()), (2, 2, 2));
    assert_eq!(
        d.sample(1).unwrap(),
        [&[0.0, 0.0, 0.0][..], &[1.0, 1.0, 1.0][..]]
    );
}

#[test]
fn ts_errors_name_line_and_field() {
    let with = |from: &str, to: &str| ts(&TOY_TS.replacen(from, to, 1));
    assert_eq!(
        location(with("4,5,6", "4,?,6")),
        (7, channel(2, Some(2)), DataErrorKind::Missing)
    );
    assert_eq!(
        location(with("4,5,6", "4,NaN,6")),
        (7, channel(2, Some(2)), DataErrorKind::Missing)
    );
    assert_eq!(
        location(with("0,0,0:", "0,zero,0:")),
        (8, channel(1, Some(2)), DataErrorKind::NotANumber)
    );
    assert_eq!(
        location(with("1,1,1:down", "1,1:down")),
        (8, channel(2, None), DataErrorKind::UnequalLength)
    );
    assert_eq!(
        location(with(":down", ":sideways")),
        (8, Some(DataField::ClassLabel), DataErrorKind::UnknownClass)
    );
    assert_eq!(
        location(with("0,0,0:1,1,1:down", "0,0,0:down")),
        (8, channel(2, None), DataErrorKind::FieldCount)
    );
    assert_eq!(
        location(with("@dimensions 2", "@dimensions 3")),
        (7, None, DataErrorKind::FieldCount)
    );
    assert_eq!(
        location(with("@seriesLength 3", "@seriesLength 4")),
        (7, channel(1, None), DataErrorKind::UnequalLength)
    );
    assert_eq!(
        location(with("@data\n", "")),
        (6, None, DataErrorKind::Header)
    );
    assert_eq!(
        location(with("@problemName toy", "@colour blue")),
        (2, None, DataErrorKind::Header)
    );
    assert_eq!(
        location(with("@classLabel true up down", "@classLabel false")),
        (5, None, DataErrorKind::Header)
    );
    assert_eq!(location(ts("")), (0, None, DataErrorKind::Empty));
    assert_eq!(location(ts("@data\n\n")), (0, None, DataErrorKind::Empty));
    let e = with("4,5,6", "4,?,6").unwrap_err();
    assert_eq!(
        e.to_string(),
        "toy.ts:7: channel 2, step 2: missing value '?'; impute before loading"
    );
}

#[test]
fn ts_error_in_real_file_points_at_the_value() {
    // Line 16 of the train file is its third sample; break step 5 of channel 4.
    let f = file("basic-motions/BasicMotions_TRAIN.ts");
    let text = std::str::from_utf8(f.bytes()).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut channels: Vec<String> = lines[15].split(':').map(String::from).collect();
    let mut values: Vec<&str> = channels[3].split(',').collect();
    values[4] = "1.2.3";
    channels[3] = values.join(",");
    lines[15] = channels.join(":");
    let r = Dataset::from_ts(&SourceFile::new("bm.ts", lines.join("\n")));
    assert_eq!(
        location(r),
        (16, channel(4, Some(5)), DataErrorKind::NotANumber)
    );
}

// ---------- errors, never panics, on mutated real files ----------

/// Byte edits: (kind, position seed, byte).
fn edits() -> impl Strategy<Value = Vec<(u8, usize, u8)>> {
    let byte = prop_oneof![
        Just(b','),
        Just(b':'),
        Just(b'\n'),
        Just(b'\r'),
        Just(b'"'),
        Just(b'@'),
        Just(b'?'),
        Just(b'-'),
        Just(b'e'),
        Just(b'.'),
        Just(0xff),
        any::<u8>(),
    ];
    proptest::collection::vec((0u8..4, any::<usize>(), byte), 1..6)
}

fn mutate(bytes: &[u8], edits: &[(u8, usize, u8)]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for &(kind, pos, b) in edits {
        let p = pos % (out.len() + 1);
        match kind {
            0 if p < out.len() => out[p] = b,
            1 => out.insert(p, b),
            2 if p < out.len() => {
                out.remove(p);
            }
            _ => out.truncate(p),
        }
    }
    out
}

/// Any error must be a data error (or a data-set check) with a line inside the file.
fn check_no_panic_result(r: qfl::Result<Dataset>, n_lines: usize) {
    match r {
        Ok(d) => assert!(d.n_samples() > 0),
        Err(Error::Data { line, .. }) => assert!(line <= n_lines, "line {line} > {n_lines}"),
        Err(Error::InvalidData { .. }) => {}
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

fn line_count(bytes: &[u8]) -> usize {
    bytes.split(|&b| b == b'\n').count()
}

proptest! {
    #![proptest_config(proptest_config(48))]

    #[test]
    fn mutated_ts_file_gives_errors_not_panics(e in edits()) {
        let f = file("basic-motions/BasicMotions_TEST.ts");
        // The header and the first 5 samples keep each case fast.
        let keep: Vec<u8> = f.bytes().split_inclusive(|&b| b == b'\n').take(18).flatten().copied().collect();
        let bytes = mutate(&keep, &e);
        let n = line_count(&bytes);
        check_no_panic_result(Dataset::from_ts(&SourceFile::new("m.ts", bytes)), n);
    }

    #[test]
    fn mutated_csv_files_give_errors_not_panics(e in edits(), which in 0usize..3) {
        let lipid = file("nutrimouse/lipid.csv");
        let genotype = file("nutrimouse/genotype.csv");
        let (mut l, mut g) = (lipid.bytes().to_vec(), genotype.bytes().to_vec());
        match which {
            0 => l = mutate(&l, &e),
            1 => g = mutate(&g, &e),
            _ => {
                l = mutate(&l, &e);
                g = mutate(&g, &e);
            }
        }
        let n = line_count(&l).max(line_count(&g));
        let r = CsvLoader::new(Labels::File { file: SourceFile::new("g.csv", g), column: Column::Last })
            .load(&[("lipid", SourceFile::new("l.csv", l))]);
        check_no_panic_result(r, n);
    }

    #[test]
    fn mutated_mfeat_csv_gives_errors_not_panics(e in edits()) {
        let mor = file("uci-mfeat/mfeat-mor.csv");
        let bytes = mutate(mor.bytes(), &e);
        let n = line_count(&bytes);
        let r = last_col().with_header(Header::Present).load(&[("mor", SourceFile::new("mor.csv", bytes.clone())), ("mor2", mor.clone())]);
        check_no_panic_result(r, n.max(2001));
        let r = last_col().load(&[("mor", SourceFile::new("mor.csv", bytes))]);
        check_no_panic_result(r, n);
    }
}

// ---------- few-shot splits ----------

fn check_split(labels: &[usize], n_classes: usize, fs: FewShot, s: &qfl::data::Split) {
    let all: Vec<usize> = s
        .train
        .iter()
        .chain(&s.val)
        .chain(&s.test)
        .copied()
        .collect();
    let set: HashSet<usize> = all.iter().copied().collect();
    assert_eq!(set.len(), all.len(), "train, val and test overlap");
    assert_eq!(
        set.len(),
        labels.len(),
        "the split does not cover every sample"
    );
    for part in [&s.train, &s.val, &s.test] {
        assert!(part.windows(2).all(|w| w[0] < w[1]), "not sorted");
    }
    for c in 0..n_classes {
        let count = |p: &[usize]| p.iter().filter(|&&i| labels[i] == c).count();
        let n_c = labels.iter().filter(|&&l| l == c).count();
        assert_eq!(count(&s.train), fs.k());
        assert_eq!(count(&s.val), fs.val_per_class().min(n_c - fs.k() - 1));
        assert!(count(&s.test) >= 1);
    }
}

#[test]
fn split_of_mfeat_has_k_per_class_and_is_reproducible() {
    let d = bundled("uci-mfeat");
    let fs = FewShot::new(5);
    let s = fs.split_dataset(&d, 42).unwrap();
    check_split(d.labels(), 10, fs, &s);
    assert_eq!((s.train.len(), s.val.len(), s.test.len()), (50, 50, 1900));
    assert_eq!(s, fs.split(d.labels(), 10, 42).unwrap());
    assert_ne!(s.train, fs.split(d.labels(), 10, 43).unwrap().train);
}

#[test]
fn split_is_pinned_for_a_seed() {
    // A fixed seed gives this split on every platform (ChaCha8 and our own bounded draw).
    let labels = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2];
    let s = FewShot::new(2)
        .with_val_per_class(1)
        .split(&labels, 3, 2026)
        .unwrap();
    assert_eq!(
        (s.train.as_slice(), s.val.as_slice(), s.test.as_slice()),
        (PINNED_TRAIN, PINNED_VAL, PINNED_TEST)
    );
}
const PINNED_TRAIN: &[usize] = &[2, 3, 4, 7, 8, 9];
const PINNED_VAL: &[usize] = &[0, 5, 10];
const PINNED_TEST: &[usize] = &[1, 6, 11];

#[test]
fn repeated_splits_use_derived_seeds_and_differ() {
    let d = bundled("nutrimouse-diet");
    let fs = FewShot::new(3);
    let splits = fs.splits_dataset(&d, 7, 5).unwrap();
    for (r, s) in splits.iter().enumerate() {
        assert_eq!(s.seed, derive_seed(7, r as u64));
        assert_eq!(*s, fs.split_dataset(&d, s.seed).unwrap());
        check_split(d.labels(), 5, fs, s);
    }
    let distinct: HashSet<&Vec<usize>> = splits.iter().map(|s| &s.train).collect();
    assert_eq!(distinct.len(), 5);
    assert_eq!(splits, fs.splits(d.labels(), 5, 7, 5).unwrap());
}

#[test]
fn split_errors() {
    let d = bundled("nutrimouse-diet"); // 8 per class
    let e = FewShot::new(8).split_dataset(&d, 0).unwrap_err();
    assert_eq!(
        e,
        Error::TooFewSamples {
            class: 0,
            name: "coc".into(),
            have: 8,
            need: 9
        }
    );
    let s = FewShot::new(7).split_dataset(&d, 0).unwrap();
    assert_eq!((s.train.len(), s.val.len(), s.test.len()), (35, 0, 5));
    assert!(matches!(
        FewShot::new(0).split(&[0, 1], 2, 0),
        Err(Error::InvalidSetting { name: "k", .. })
    ));
    assert!(matches!(
        FewShot::new(1).split(&[0, 1, 5], 2, 0),
        Err(Error::InvalidData { .. })
    ));
    // A declared class with no sample cannot get k examples.
    assert!(matches!(
        FewShot::new(1).split(&[0, 0, 1, 1], 3, 0),
        Err(Error::TooFewSamples {
            class: 2,
            have: 0,
            ..
        })
    ));
}

proptest! {
    #![proptest_config(proptest_config(64))]

    #[test]
    fn split_properties(
        n_classes in 1usize..6,
        extra in proptest::collection::vec(0usize..6, 0..40),
        k in 1usize..4,
        v in 0usize..4,
        seed in any::<u64>(),
    ) {
        // Every class gets k + 1 samples, then random extra ones.
        let mut labels: Vec<usize> = (0..n_classes).flat_map(|c| std::iter::repeat_n(c, k + 1)).collect();
        labels.extend(extra.iter().map(|&c| c % n_classes));
        let fs = FewShot::new(k).with_val_per_class(v);
        let s = fs.split(&labels, n_classes, seed).unwrap();
        check_split(&labels, n_classes, fs, &s);
        prop_assert_eq!(&s, &fs.split(&labels, n_classes, seed).unwrap());
    }
}

// ---------- standardization ----------

#[test]
fn standardizer_fits_on_train_rows_only() {
    let d = bundled("uci-mfeat");
    let split = FewShot::new(10).split_dataset(&d, 1).unwrap();
    let scaler = Standardizer::fit(&d, &split.train).unwrap();
    let scaled = scaler.apply(&d).unwrap();
    let train = scaled.subset(&split.train).unwrap();
    for (m, orig) in train.modalities().iter().zip(d.modalities()) {
        let n = train.n_samples() as f64;
        for j in 0..m.n_features() {
            let col: Vec<f64> = m.rows().map(|r| r[j]).collect();
            let mean = col.iter().sum::<f64>() / n;
            let var = col.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
            assert!(mean.abs() < 1e-12, "{} feature {j}: mean {mean}", m.name());
            let orig_col: Vec<f64> = split
                .train
                .iter()
                .map(|&i| orig.row(i).unwrap()[j])
                .collect();
            let constant = orig_col.iter().all(|&x| x == orig_col[0]);
            if constant {
                assert!(var < 1e-20, "{} feature {j}: var {var}", m.name());
            } else {
                assert!(
                    (var - 1.0).abs() < 1e-10,
                    "{} feature {j}: var {var}",
                    m.name()
                );
            }
        }
    }
    // Changing test rows does not change the fit.
    let mut values = d.modality(0).unwrap().values().to_vec();
    let d_feat = d.modality(0).unwrap().n_features();
    for &i in &split.test {
        for x in &mut values[i * d_feat..(i + 1) * d_feat] {
            *x = *x * 100.0 + 7.0;
        }
    }
    let mut mods = d.modalities().to_vec();
    mods[0] = Modality::new("fou", d_feat, values).unwrap();
    let changed = Dataset::new(mods, d.labels().to_vec(), d.class_names().to_vec()).unwrap();
    assert_eq!(Standardizer::fit(&changed, &split.train).unwrap(), scaler);
    assert_ne!(Standardizer::fit(&changed, &split.test).unwrap(), scaler);
}

#[test]
fn standardizer_guards_constant_features_and_checks_shapes() {
    let m = Modality::new("m", 2, vec![3.0, 1.0, 3.0, 2.0, 3.0, 3.0]).unwrap();
    let d = Dataset::new(vec![m], vec![0, 0, 1], vec!["a".into(), "b".into()]).unwrap();
    let s = Standardizer::fit(&d, &[0, 1, 2]).unwrap();
    assert_eq!(s.scale(0).unwrap()[0], 1.0);
    let out = s.apply(&d).unwrap();
    assert!(
        out.modality(0)
            .unwrap()
            .values()
            .iter()
            .all(|x| x.is_finite())
    );
    assert_eq!(out.modality(0).unwrap().row(0).unwrap()[0], 0.0);
    // One training row: every feature is constant, so only centring.
    let one = Standardizer::fit(&d, &[1]).unwrap();
    assert_eq!(one.scale(0).unwrap(), [1.0, 1.0]);
    assert!(Standardizer::fit(&d, &[]).is_err());
    assert!(Standardizer::fit(&d, &[3]).is_err());
    assert!(s.apply(&bundled("nutrimouse-diet")).is_err());
}

// ---------- Dataset invariants ----------

#[test]
fn dataset_checks_its_parts() {
    let m = |name: &str, n: usize| Modality::new(name, 1, vec![0.0; n]).unwrap();
    let names = || vec!["a".to_string(), "b".to_string()];
    assert!(Dataset::new(vec![], vec![], names()).is_err());
    assert!(Dataset::new(vec![m("x", 2)], vec![0], names()).is_err());
    assert!(Dataset::new(vec![m("x", 2), m("x", 2)], vec![0, 1], names()).is_err());
    assert!(Dataset::new(vec![m("x", 2)], vec![0, 2], names()).is_err());
    assert!(Dataset::new(vec![m("x", 2)], vec![0, 1], vec!["a".into(), "a".into()]).is_err());
    assert!(Modality::new("x", 0, vec![]).is_err());
    assert!(Modality::new("x", 2, vec![1.0; 3]).is_err());
    assert!(matches!(
        Modality::new("x", 1, vec![f64::NAN]),
        Err(Error::NonFiniteValue { index: 0, .. })
    ));
    let d = Dataset::new(vec![m("x", 2)], vec![0, 1], names()).unwrap();
    assert!(d.subset(&[2]).is_err());
    assert_eq!(d.subset(&[1, 1]).unwrap().labels(), [1, 1]);
    assert!(d.sample(2).is_none());
}
