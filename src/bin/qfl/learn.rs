//! `qfl train` and `qfl compare`: the few-shot protocol on bundled or user data.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Serialize;

use qfl::data::{Column, CsvLoader, Dataset, Labels};
use qfl::experiment::{ModelBuilder, ModelResult, Protocol, evaluate, markdown_table};
use qfl::fusion::baselines::{ModelKind, build_baseline};
use qfl::fusion::quantum::{QflFusion, QflSettings, ReadoutMode};
use qfl::fusion::{FusionModel, FusionSpec};
use qfl::plot::{Bar, Series, bar_chart, line_chart};
use qfl::qfl::{Backend, Entangler, QflConfig};
use qfl::train::TrainConfig;

use super::{Failure, MpsArgs, emit, progress};

/// Where the data come from.
#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// A bundled data set: uci-mfeat, basic-motions, nutrimouse-genotype, nutrimouse-diet.
    #[arg(long, conflicts_with_all = ["ts", "csv"])]
    dataset: Option<String>,
    /// A UEA/sktime .ts file (each channel one modality).
    #[arg(long, conflicts_with = "csv")]
    ts: Option<PathBuf>,
    /// One CSV file per modality, same rows, with a label column (see --label-column).
    #[arg(long, num_args = 1..)]
    csv: Vec<PathBuf>,
    /// The label column of the CSV files: "last", a 0-based index, or a header name.
    #[arg(long, default_value = "last")]
    label_column: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModelChoice {
    /// The quantum fusion layer.
    Qfl,
    /// Concatenate raw features, one MLP.
    Early,
    /// One classifier per modality, logits averaged.
    Late,
    /// Tensor fusion network (exponential in the number of modalities).
    Tfn,
    /// Low-rank multimodal fusion.
    Lmf,
    /// Multimodal factorized bilinear pooling.
    Mfb,
    /// Graph convolution over the modalities.
    Gcn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum EntanglerChoice {
    Brick,
    Rzz,
    Ring,
    All,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum QflBackend {
    Dense,
    Mps,
}

/// Settings shared by `train` and `compare`.
#[derive(Args, Clone, Debug)]
pub struct ProtocolArgs {
    /// Labelled training examples per class.
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Validation examples per class for early stopping (default: half of k, rounded up).
    /// Taken from the non-training rows, always leaving at least one test row per class.
    #[arg(long)]
    val_per_class: Option<usize>,
    /// Repeats over seeds.
    #[arg(long, default_value_t = 10)]
    repeats: usize,
    /// Base seed (splits, initialization, batches, shots).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Qubits (angles) per modality, D.
    #[arg(long, default_value_t = 2)]
    d: usize,
    /// Repeats of the QFL block, P.
    #[arg(long, default_value_t = 2)]
    p: usize,
    /// QFL entangling layer.
    #[arg(long, value_enum, default_value_t = EntanglerChoice::Brick)]
    entangler: EntanglerChoice,
    /// QFL simulator.
    #[arg(long, value_enum, default_value_t = QflBackend::Mps)]
    backend: QflBackend,
    #[command(flatten)]
    mps: MpsArgs,
    /// Randomized-measurement shots per sample (exact expectation values when absent).
    #[arg(long)]
    shots: Option<usize>,
    /// Most epochs.
    #[arg(long, default_value_t = 200)]
    epochs: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    /// Mini-batch size.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Early-stopping patience in epochs (0: none).
    #[arg(long, default_value_t = 20)]
    patience: usize,
    /// Hidden width of every modality encoder.
    #[arg(long, default_value_t = 16)]
    hidden: usize,
    /// A graph over the modalities, as 0-based pairs "0-1,1-2,...": GCN's edges, and the QFL's
    /// register order (bandwidth-reducing). Without it GCN uses the complete graph and the QFL
    /// the given order.
    #[arg(long)]
    graph: Option<String>,
    /// Embedding size of the baselines' modality encoders.
    #[arg(long, default_value_t = 8)]
    embed: usize,
    /// Rank of LMF.
    #[arg(long, default_value_t = 4)]
    rank: usize,
    /// Output directory for JSON, tables and plots.
    #[arg(long, default_value = "qfl-results")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// `qfl train`.
#[derive(Args, Clone, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The model to train.
    #[arg(long, value_enum, default_value_t = ModelChoice::Qfl)]
    model: ModelChoice,
    #[command(flatten)]
    protocol: ProtocolArgs,
}

/// `qfl compare`.
#[derive(Args, Clone, Debug)]
pub struct CompareArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The models to compare (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    models: Vec<ModelChoice>,
    #[command(flatten)]
    protocol: ProtocolArgs,
}

fn load(data: &DataArgs) -> Result<(Dataset, String), Failure> {
    if let Some(name) = &data.dataset {
        return Ok((Dataset::bundled(name)?, name.clone()));
    }
    if let Some(ts) = &data.ts {
        return Ok((Dataset::read_ts(ts)?, ts.display().to_string()));
    }
    if data.csv.is_empty() {
        return Err(Failure::Input(
            "give --dataset NAME, --ts FILE or --csv FILE...".into(),
        ));
    }
    let column = match data.label_column.as_str() {
        "last" => Column::Last,
        s => match s.parse::<usize>() {
            Ok(i) => Column::Index(i),
            Err(_) => Column::Name(s.to_string()),
        },
    };
    let names: Vec<String> = data
        .csv
        .iter()
        .map(|p| {
            p.file_stem().map_or_else(
                || p.display().to_string(),
                |s| s.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let files: Vec<(&str, &Path)> = names
        .iter()
        .map(String::as_str)
        .zip(data.csv.iter().map(PathBuf::as_path))
        .collect();
    let dataset = CsvLoader::new(Labels::Column(column)).read(&files)?;
    Ok((dataset, names.join("+")))
}

fn protocol(p: &ProtocolArgs) -> Protocol {
    Protocol {
        k: p.k,
        val_per_class: p.val_per_class.unwrap_or(p.k.div_ceil(2)),
        repeats: p.repeats,
        seed: p.seed,
        hidden: p.hidden,
        train: TrainConfig {
            epochs: p.epochs,
            batch_size: p.batch,
            learning_rate: p.lr,
            patience: p.patience,
            seed: p.seed,
        },
    }
}

/// Parses `"0-1,1-2"` into edges between modalities `0..n`.
fn parse_graph(text: &str, n: usize) -> Result<Vec<(usize, usize)>, Failure> {
    text.split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            let bad = || {
                Failure::Input(format!(
                    "--graph: edge {t:?} must be two modality indices below {n}, as 0-1"
                ))
            };
            let (a, b) = t.trim().split_once('-').ok_or_else(bad)?;
            let a: usize = a.trim().parse().map_err(|_| bad())?;
            let b: usize = b.trim().parse().map_err(|_| bad())?;
            if a >= n || b >= n {
                return Err(bad());
            }
            Ok((a, b))
        })
        .collect()
}

fn builder(
    choice: ModelChoice,
    p: &ProtocolArgs,
    n_modalities: usize,
) -> Result<Box<ModelBuilder<'static>>, Failure> {
    let graph = p
        .graph
        .as_deref()
        .map(|g| parse_graph(g, n_modalities))
        .transpose()?;
    let kind = match choice {
        ModelChoice::Qfl => {
            let entangler = match p.entangler {
                EntanglerChoice::Brick => Entangler::BrickCz,
                EntanglerChoice::Rzz => Entangler::BrickRzz,
                EntanglerChoice::Ring => Entangler::RingCz,
                EntanglerChoice::All => Entangler::AllToAllCz,
                EntanglerChoice::None => Entangler::None,
            };
            let backend = match p.backend {
                QflBackend::Dense => Backend::Dense,
                QflBackend::Mps => Backend::Mps(p.mps.config()?),
            };
            let readout = match p.shots {
                None => ReadoutMode::Exact,
                Some(shots) => ReadoutMode::Shadows {
                    shots,
                    seed: p.seed,
                },
            };
            let mut layer = QflConfig::new(n_modalities, p.d, p.p).with_entangler(entangler);
            if let Some(edges) = &graph {
                layer = layer.with_modality_graph(edges)?;
            }
            let settings = QflSettings {
                layer,
                backend,
                readout,
            };
            return Ok(Box::new(
                move |spec: &FusionSpec, vb| -> candle_core::Result<Box<dyn FusionModel>> {
                    Ok(Box::new(QflFusion::new(spec, &settings, vb)?))
                },
            ));
        }
        ModelChoice::Early => ModelKind::Early { embed: p.embed },
        ModelChoice::Late => ModelKind::Late { embed: p.embed },
        ModelChoice::Tfn => ModelKind::Tfn { embed: p.embed },
        ModelChoice::Lmf => ModelKind::Lmf {
            embed: p.embed,
            rank: p.rank,
        },
        ModelChoice::Mfb => ModelKind::Mfb {
            embed: p.embed,
            factor: 4,
            out: p.embed,
        },
        ModelChoice::Gcn => ModelKind::Gcn {
            embed: p.embed,
            gcn_hidden: p.embed,
            edges: graph,
        },
    };
    Ok(Box::new(move |spec: &FusionSpec, vb| {
        build_baseline(&kind, spec, vb)
    }))
}

#[derive(Serialize)]
struct RunJson {
    repeat: usize,
    auc: f64,
    accuracy: f64,
    best_epoch: usize,
    seconds: f64,
    train_loss: Vec<f64>,
    val_loss: Vec<f64>,
}

#[derive(Serialize)]
struct ModelJson {
    model: String,
    auc_mean: f64,
    auc_std: f64,
    accuracy_mean: f64,
    accuracy_std: f64,
    parameters: usize,
    seconds_mean: f64,
    runs: Vec<RunJson>,
}

#[derive(Serialize)]
struct ReportJson<'a> {
    data: &'a str,
    samples: usize,
    classes: usize,
    modalities: usize,
    k: usize,
    repeats: usize,
    seed: u64,
    command: String,
    models: Vec<ModelJson>,
    skipped: Vec<String>,
}

impl<'a> ReportJson<'a> {
    fn new(
        data: &'a str,
        dataset: &Dataset,
        p: &ProtocolArgs,
        results: &[ModelResult],
        skipped: Vec<String>,
    ) -> Self {
        ReportJson {
            data,
            samples: dataset.n_samples(),
            classes: dataset.n_classes(),
            modalities: dataset.n_modalities(),
            k: p.k,
            repeats: p.repeats,
            seed: p.seed,
            command: command_line(),
            models: results.iter().map(model_json).collect(),
            skipped,
        }
    }
}

fn model_json(r: &ModelResult) -> ModelJson {
    ModelJson {
        model: r.name.clone(),
        auc_mean: r.auc.mean,
        auc_std: r.auc.std,
        accuracy_mean: r.accuracy.mean,
        accuracy_std: r.accuracy.std,
        parameters: r.n_parameters,
        seconds_mean: r.seconds.mean,
        runs: r
            .runs
            .iter()
            .map(|run| RunJson {
                repeat: run.repeat,
                auc: run.auc,
                accuracy: run.accuracy,
                best_epoch: run.best_epoch,
                seconds: run.seconds,
                train_loss: run.curve.iter().map(|e| e.train_loss).collect(),
                val_loss: run.curve.iter().map(|e| e.val_loss).collect(),
            })
            .collect(),
    }
}

fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn write(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text)
        .map_err(|e| Failure::Run(format!("cannot write {}: {e}", path.display())))
}

/// Trains every model in `choices`; models that cannot be built on this data (TFN beyond
/// its size limit) are skipped with a note.
fn run_models(
    choices: &[ModelChoice],
    data: &DataArgs,
    p: &ProtocolArgs,
) -> Result<(Dataset, String, Vec<ModelResult>, Vec<String>), Failure> {
    let (dataset, data_name) = load(data)?;
    if p.k == 0 || p.repeats == 0 {
        return Err(Failure::Input(
            "--k and --repeats must be at least 1".into(),
        ));
    }
    if p.backend == QflBackend::Mps {
        p.mps.config()?;
    }
    std::fs::create_dir_all(&p.out)
        .map_err(|e| Failure::Run(format!("cannot create {}: {e}", p.out.display())))?;
    let proto = protocol(p);
    let bar = progress(choices.len() * p.repeats, p.quiet, "training");
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    for &choice in choices {
        let build = builder(choice, p, dataset.n_modalities())?;
        let mut last_repeat = usize::MAX;
        let outcome = evaluate(&dataset, build.as_ref(), &proto, |repeat, record| {
            if repeat != last_repeat {
                if last_repeat != usize::MAX {
                    bar.inc(1);
                }
                last_repeat = repeat;
            }
            bar.set_message(format!("{choice:?} repeat {repeat} epoch {}", record.epoch));
        });
        match outcome {
            Ok(r) => {
                bar.inc(1);
                results.push(r);
            }
            Err(qfl::Error::Training { message }) if choice == ModelChoice::Tfn => {
                bar.inc(p.repeats as u64);
                skipped.push(format!("TFN: {message}"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    bar.finish_and_clear();
    Ok((dataset, data_name, results, skipped))
}

fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

fn curve_plot(dir: &Path, r: &ModelResult) -> Result<PathBuf, Failure> {
    let run = &r.runs[0];
    let series = vec![
        Series {
            name: "train loss".into(),
            points: run
                .curve
                .iter()
                .map(|e| (e.epoch as f64, e.train_loss))
                .collect(),
        },
        Series {
            name: "validation loss".into(),
            points: run
                .curve
                .iter()
                .map(|e| (e.epoch as f64, e.val_loss))
                .collect(),
        },
    ];
    let path = dir.join(format!("curve-{}.svg", file_stem(&r.name)));
    line_chart(
        &path,
        &format!("{} (repeat 0, best epoch {})", r.name, run.best_epoch),
        "epoch",
        "cross-entropy",
        &series,
    )?;
    Ok(path)
}

/// `qfl train`.
pub fn train(args: &TrainArgs) -> Result<(), Failure> {
    let (dataset, data_name, results, skipped) =
        run_models(&[args.model], &args.data, &args.protocol)?;
    let p = &args.protocol;
    let Some(r) = results.first() else {
        return Err(Failure::Run(skipped.join("; ")));
    };
    let report = ReportJson::new(&data_name, &dataset, p, std::slice::from_ref(r), skipped);
    let json_path = p.out.join(format!("train-{}.json", file_stem(&r.name)));
    write(
        &json_path,
        &serde_json::to_string_pretty(&report).map_err(|e| Failure::Run(e.to_string()))?,
    )?;
    let plot = curve_plot(&p.out, r)?;
    emit(&format!(
        "{data_name}: {} samples, {} classes, {} modalities; k = {}, {} repeats\n{}\nwrote {} and {}\n",
        dataset.n_samples(),
        dataset.n_classes(),
        dataset.n_modalities(),
        p.k,
        p.repeats,
        markdown_table(&results),
        json_path.display(),
        plot.display()
    ))
}

/// `qfl compare`.
pub fn compare(args: &CompareArgs) -> Result<(), Failure> {
    let all = [
        ModelChoice::Qfl,
        ModelChoice::Early,
        ModelChoice::Late,
        ModelChoice::Tfn,
        ModelChoice::Lmf,
        ModelChoice::Mfb,
        ModelChoice::Gcn,
    ];
    let choices: Vec<ModelChoice> = if args.models.is_empty() {
        all.to_vec()
    } else {
        args.models.clone()
    };
    let (dataset, data_name, results, skipped) = run_models(&choices, &args.data, &args.protocol)?;
    let p = &args.protocol;
    let stem = file_stem(&data_name);
    let mut md = format!(
        "## {data_name}: k = {}, {} repeats\n\n{} samples, {} classes, {} modalities. Command: `{}`\n\n{}",
        p.k,
        p.repeats,
        dataset.n_samples(),
        dataset.n_classes(),
        dataset.n_modalities(),
        command_line(),
        markdown_table(&results)
    );
    for s in &skipped {
        md.push_str(&format!("\nSkipped: {s}\n"));
    }
    let md_path = p.out.join(format!("compare-{stem}-k{}.md", p.k));
    write(&md_path, &md)?;
    let report = ReportJson::new(&data_name, &dataset, p, &results, skipped);
    let json_path = p.out.join(format!("compare-{stem}-k{}.json", p.k));
    write(
        &json_path,
        &serde_json::to_string_pretty(&report).map_err(|e| Failure::Run(e.to_string()))?,
    )?;
    // Short labels (the settings are in the table); the axis starts just below the lowest bar.
    let bars: Vec<Bar> = results
        .iter()
        .map(|r| {
            let label = r.name.split(" (").next().unwrap_or(&r.name).to_string();
            (label, r.auc.mean, r.auc.std)
        })
        .collect();
    let low = bars.iter().map(|b| b.1 - b.2).fold(1.0f64, f64::min);
    let y_min = ((low - 0.05) * 10.0).floor().clamp(0.0, 9.0) / 10.0;
    let svg = p.out.join(format!("compare-{stem}-k{}.svg", p.k));
    if !bars.is_empty() {
        bar_chart(
            &svg,
            &format!(
                "{data_name}, k = {}: test ROC AUC over {} seeds",
                p.k, p.repeats
            ),
            "ROC AUC",
            &bars,
            (y_min, 1.0),
        )?;
    }
    emit(&format!(
        "{md}\nwrote {}, {} and {}\n",
        md_path.display(),
        json_path.display(),
        svg.display()
    ))
}
