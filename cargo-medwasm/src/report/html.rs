//! `bench --report <dir>`: the report as one self-contained HTML page: no script, no
//! font, no stylesheet or image from anywhere else (its Content-Security-Policy
//! forbids them, so a stray reference shows up as a console error rather than a
//! request). Plots are hand-written inline SVG: a few rectangles and lines need no
//! plotting crate, and the page stays a few tens of KiB.
//!
//! What it shows, per target and device: conformance (a square per vector, the
//! largest deviation), the spread of the warm runs (a box plot of every target on one
//! axis, and a histogram per target), cold start against a warm run, the size split
//! and memory; failed and unreachable devices with what happened.

use std::fmt::Write as _;

use super::{
    BenchReport, Deviation, Distribution, FailureKind, TargetReport, bytes, deviation_cell, micros,
    scientific,
};

/// The page for `report`.
pub fn render(report: &BenchReport) -> String {
    let mut page = String::with_capacity(32 * 1024);
    let title = format!("medwasm bench — {}", report.detector);
    let _ = write!(
        page,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body>
"#,
        title = esc(&title),
    );
    header(&mut page, report);
    summary(&mut page, report);
    overview_plot(&mut page, report);
    for target in &report.targets {
        target_section(&mut page, report, target);
    }
    let _ = write!(
        page,
        "<footer>Written by {} from the same measurements as <code>report.json</code> \
         beside it, which has every figure exactly.</footer>\n</body>\n</html>\n",
        esc(&report.tool)
    );
    page
}

const STYLE: &str = "
:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --ink: #1f2328; --mute: #59636e;
  --line: #d1d9e0; --bg: #f6f8fa; --code: #0969da; --weights: #8250df; --meta: #bf8700; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: var(--ink);
  margin: 0 auto; max-width: 1120px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 0; }
h3 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--mute); margin: 0 0 8px; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; color: var(--mute); margin: 8px 0 20px; }
.meta b { font-weight: 600; color: var(--ink); }
.verdict { display: inline-block; font-weight: 700; padding: 4px 12px; border-radius: 6px; color: #fff; margin: 0 0 12px; }
.pass { background: var(--ok); } .fail { background: var(--bad); } .unreach { background: var(--warn); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--bg); font-weight: 600; font-size: 12px; }
td.num, th.num { text-align: right; white-space: nowrap; }
.tag { font-size: 12px; font-weight: 600; padding: 1px 8px; border-radius: 10px; color: #fff; white-space: nowrap; }
.small { font-size: 12px; color: var(--mute); }
section.target { border: 1px solid var(--line); border-radius: 8px; margin: 24px 0; }
section.target > header { padding: 12px 16px; background: var(--bg); border-bottom: 1px solid var(--line);
  border-radius: 8px 8px 0 0; display: flex; gap: 12px; align-items: baseline; flex-wrap: wrap; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(330px, 1fr)); gap: 16px; padding: 16px; }
.card { min-width: 0; }
.failure { padding: 16px; white-space: pre-wrap; font: 13px ui-monospace, monospace; }
details { padding: 0 16px 16px; } summary { cursor: pointer; color: var(--mute); }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: var(--ink); }
svg .axis { stroke: var(--mute); stroke-width: 1; }
svg .grid { stroke: var(--line); stroke-width: 1; }
footer { color: var(--mute); font-size: 12px; margin-top: 32px; }
";

fn header(page: &mut String, r: &BenchReport) {
    let t = r.tolerance;
    let mut tolerance = format!(
        "|got − want| ≤ {} + {} · |want|",
        scientific(t.abs),
        scientific(t.rel)
    );
    if r.targets.iter().flat_map(|t| &t.vectors).any(|v| {
        [v.vs_tract, v.vs_expected]
            .iter()
            .flatten()
            .any(|d| d.steps.is_some())
    }) {
        let _ = write!(
            tolerance,
            "; quantized outputs: at most {} step(s) off",
            t.steps
        );
    }
    let _ = write!(
        page,
        r#"<h1>Bench of <code>{}</code></h1>
<div class="meta">
<span>model</span><b>{} <span class="small">sha256 {}</span></b>
<span>tolerance</span><b>{}</b>
<span>host</span><b>{}</b>
<span>measured</span><b>{} by {}</b>
</div>
"#,
        esc(&r.detector),
        esc(&r.model),
        esc(&r.model_sha256),
        esc(&tolerance),
        esc(&r.host),
        esc(&r.generated),
        esc(&r.tool),
    );
}

fn summary(page: &mut String, r: &BenchReport) {
    let (failed, total) = r.failed_vectors();
    let unbenched = r.unbenched_targets();
    let (class, verdict) = if r.passed() {
        (
            "pass",
            format!("PASS — {total} of {total} vectors agree on every target"),
        )
    } else if failed == 0 && unbenched > 0 {
        (
            "unreach",
            format!("FAIL — vectors agree, but {unbenched} target(s) could not be benched"),
        )
    } else {
        (
            "fail",
            format!("FAIL — {failed} of {total} vectors disagree or failed"),
        )
    };
    let _ = writeln!(
        page,
        r#"<div class="verdict {class}">{}</div>"#,
        esc(&verdict)
    );
    page.push_str(
        "<table><thead><tr><th>target</th><th>conformance</th><th>largest deviation</th>\
         <th class=\"num\">warm median</th><th class=\"num\">p99</th><th class=\"num\">cold start</th>\
         <th class=\"num\">size</th><th class=\"num\">memory</th></tr></thead><tbody>\n",
    );
    for t in &r.targets {
        let _ = write!(
            page,
            "<tr><td><b>{}</b><br><span class=\"small\">{}</span></td><td>{}</td>",
            esc(&t.target),
            esc(&t.runtime),
            conformance_tag(t)
        );
        if t.failure.is_some() {
            page.push_str("<td colspan=\"6\" class=\"small\">not measured</td></tr>\n");
            continue;
        }
        let l = &t.latency;
        let warm = match (&t.device, l.median_us) {
            (Some(d), _) if l.runs > 0 => format!("{} instr.", d.instructions),
            (_, Some(us)) => micros(us),
            _ => "–".to_string(),
        };
        let _ = writeln!(
            page,
            "<td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&largest_deviation(t)),
            esc(&warm),
            esc(&l.p99_us.map_or_else(|| "–".to_string(), micros)),
            esc(&l.cold_start_us.map_or_else(|| "–".to_string(), micros)),
            esc(&bytes(t.size.total)),
            esc(&memory_line(t)),
        );
    }
    page.push_str("</tbody></table>\n");
    for skipped in &r.skipped {
        let _ = writeln!(
            page,
            "<p class=\"small\"><span class=\"tag unreach\">skipped</span> <b>{}</b>: {}</p>",
            esc(&skipped.target),
            esc(&skipped.why)
        );
    }
}

fn conformance_tag(t: &TargetReport) -> String {
    if let Some(failure) = &t.failure {
        let (class, word) = match failure.kind {
            FailureKind::Unreachable => ("unreach", "unreachable"),
            FailureKind::Failed => ("fail", "failed"),
        };
        return format!(r#"<span class="tag {class}">{word}</span>"#);
    }
    let passed = t.vectors.iter().filter(|v| v.passed()).count();
    let class = if t.passed { "pass" } else { "fail" };
    format!(
        r#"<span class="tag {class}">{passed} / {} pass</span>"#,
        t.vectors.len()
    )
}

/// The worst deviation of any vector against any reference, as the text report
/// writes one cell.
fn largest_deviation(t: &TargetReport) -> String {
    let worst = t
        .vectors
        .iter()
        .flat_map(|v| [v.vs_tract, v.vs_expected])
        .flatten()
        .reduce(Deviation::merge);
    deviation_cell(worst)
}

fn memory_line(t: &TargetReport) -> String {
    match (&t.device, t.memory.wasm_pages) {
        (Some(d), _) => format!("{} RAM", bytes(d.ram_bytes)),
        (None, Some(pages)) => format!(
            "{} arena, {} linear",
            bytes(t.memory.arena_bytes),
            bytes(pages * 65536)
        ),
        (None, None) => format!("{} arena", bytes(t.memory.arena_bytes)),
    }
}

/// A log-scale axis from `lo` to `hi` (both > 0) onto `x0..x1`.
struct LogAxis {
    lo: f64,
    hi: f64,
    x0: f64,
    x1: f64,
}

impl LogAxis {
    /// Whole decades around every value in `values` (all > 0).
    fn around(values: impl Iterator<Item = f64>, x0: f64, x1: f64) -> Option<LogAxis> {
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        for v in values.filter(|v| v.is_finite() && *v > 0.0) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if hi == 0.0 {
            return None;
        }
        let lo = 10f64.powf(lo.log10().floor());
        let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
        Some(LogAxis { lo, hi, x0, x1 })
    }

    fn x(&self, v: f64) -> f64 {
        let v = v.clamp(self.lo, self.hi);
        self.x0 + (self.x1 - self.x0) * (v / self.lo).log10() / (self.hi / self.lo).log10()
    }

    /// Grid lines at 1, 2 and 5 of every decade; labels on the decades (every other
    /// one when they would crowd), and on 2 and 5 too when there is room.
    fn draw(&self, svg: &mut String, top: f64, bottom: f64) {
        let decades = (self.hi / self.lo).log10().round().max(1.0);
        let per_decade = (self.x1 - self.x0) / decades;
        let every = if per_decade < 48.0 { 2 } else { 1 };
        let mut decade = self.lo;
        let mut n = 0;
        while decade <= self.hi * 1.0001 {
            for (k, m) in [1.0, 2.0, 5.0].into_iter().enumerate() {
                let v = decade * m;
                if v > self.hi * 1.0001 {
                    break;
                }
                let x = self.x(v);
                let _ = write!(
                    svg,
                    r#"<line class="grid" x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}"/>"#
                );
                let labelled = if k == 0 {
                    n % every == 0
                } else {
                    per_decade >= 150.0
                };
                if labelled {
                    let _ = write!(
                        svg,
                        r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                        bottom + 14.0,
                        esc(&tick(v))
                    );
                }
            }
            decade *= 10.0;
            n += 1;
        }
    }
}

/// An axis label: `5 µs`, `20 ms`, `1 s`.
fn tick(us: f64) -> String {
    let (value, unit) = if us < 1_000.0 {
        (us, "µs")
    } else if us < 1_000_000.0 {
        (us / 1_000.0, "ms")
    } else {
        (us / 1_000_000.0, "s")
    };
    if value >= 1.0 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value} {unit}")
    }
}

/// Every target's warm runs as a box plot on one log axis: box from the first to the
/// third quartile, a bar at the median, whiskers from the fastest run to the 99th
/// percentile, a dot at the slowest.
fn overview_plot(page: &mut String, r: &BenchReport) {
    let rows: Vec<(&TargetReport, &Distribution, f64, f64)> = r
        .targets
        .iter()
        .filter_map(|t| {
            Some((
                t,
                t.latency.warm.as_ref()?,
                t.latency.median_us?,
                t.latency.p99_us?,
            ))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let (width, left, row_h) = (1000.0, 240.0, 30.0);
    let height = 30.0 + row_h * rows.len() as f64 + 10.0;
    let values = rows.iter().flat_map(|(_, d, _, _)| [d.min_us, d.max_us]);
    let Some(axis) = LogAxis::around(values, left, width - 20.0) else {
        return;
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="Warm inference time per target, log scale">"#
    );
    let plot_bottom = height - 30.0;
    axis.draw(&mut svg, 6.0, plot_bottom);
    for (i, (t, d, median, p99)) in rows.iter().enumerate() {
        let y = 6.0 + row_h * i as f64 + row_h / 2.0;
        // The runtime is in the tooltip and the table; a device's name can be long.
        let label: String = if t.target.chars().count() > 36 {
            t.target.chars().take(35).chain(['…']).collect()
        } else {
            t.target.clone()
        };
        let (xmin, xq1, xmed, xq3, xp99, xmax) = (
            axis.x(d.min_us),
            axis.x(d.q1_us),
            axis.x(*median),
            axis.x(d.q3_us),
            axis.x(*p99),
            axis.x(d.max_us),
        );
        let _ = write!(
            svg,
            r##"<g><title>{title}</title><text x="{lx:.1}" y="{ty:.1}" text-anchor="end">{label}</text><line class="axis" x1="{xmin:.1}" y1="{y:.1}" x2="{xp99:.1}" y2="{y:.1}"/><line class="axis" x1="{xmin:.1}" y1="{a:.1}" x2="{xmin:.1}" y2="{b:.1}"/><line class="axis" x1="{xp99:.1}" y1="{a:.1}" x2="{xp99:.1}" y2="{b:.1}"/><rect x="{xq1:.1}" y="{bt:.1}" width="{bw:.1}" height="{bh:.1}" fill="#ddf4ff" stroke="#0969da"/><line x1="{xmed:.1}" y1="{bt:.1}" x2="{xmed:.1}" y2="{bb:.1}" stroke="#0969da" stroke-width="2.5"/><circle cx="{xmax:.1}" cy="{y:.1}" r="2.5" fill="#59636e"/></g>"##,
            title = esc(&format!(
                "{} on {}: min {}, q1 {}, median {}, q3 {}, p99 {}, max {} ({} runs)",
                t.target,
                t.runtime,
                micros(d.min_us),
                micros(d.q1_us),
                micros(*median),
                micros(d.q3_us),
                micros(*p99),
                micros(d.max_us),
                t.latency.runs
            )),
            lx = left - 10.0,
            ty = y + 4.0,
            label = esc(&label),
            a = y - 5.0,
            b = y + 5.0,
            bt = y - 9.0,
            bb = y + 9.0,
            bw = (xq3 - xq1).max(1.0),
            bh = 18.0,
        );
    }
    svg.push_str("</svg>");
    let _ = writeln!(
        page,
        "<h2 style=\"margin-top:28px\">Warm inference, every target</h2>\
         <p class=\"small\">One inference after warm-up, log scale. Box: first to third \
         quartile, thick bar: median, whiskers: fastest run to 99th percentile, dot: \
         slowest run. Hover for the figures.</p>{svg}"
    );
}

fn target_section(page: &mut String, r: &BenchReport, t: &TargetReport) {
    let _ = writeln!(
        page,
        "<section class=\"target\"><header><h2>{}</h2>{}<span class=\"small\">{}</span></header>",
        esc(&t.target),
        conformance_tag(t),
        esc(&t.runtime)
    );
    if let Some(failure) = &t.failure {
        let _ = writeln!(
            page,
            "<div class=\"failure\">{}</div></section>",
            esc(&failure.message)
        );
        return;
    }
    page.push_str("<div class=\"cards\">");
    card(page, "Conformance", &conformance_strip(r, t));
    if let Some(d) = &t.device {
        card(
            page,
            "Instructions (QEMU)",
            &device_figures(d, t.latency.runs),
        );
    } else if let Some(svg) = histogram(t) {
        card(page, "Warm runs", &svg);
    }
    if let Some(svg) = cold_start(t) {
        card(page, "Cold start", &svg);
    }
    card(page, "Size", &size_split(t));
    card(page, "Memory", &memory(t));
    page.push_str("</div>");
    vector_table(page, t);
    page.push_str("</section>\n");
}

fn card(page: &mut String, title: &str, body: &str) {
    let _ = write!(
        page,
        "<div class=\"card\"><h3>{}</h3>{body}</div>",
        esc(title)
    );
}

/// A square per vector, green or red, with its deviations on hover.
fn conformance_strip(r: &BenchReport, t: &TargetReport) -> String {
    let per_row = 20usize;
    let side = 15.0;
    let rows = t.vectors.len().div_ceil(per_row).max(1);
    let (w, h) = (per_row as f64 * (side + 2.0), rows as f64 * (side + 2.0));
    let mut svg = format!(
        r#"<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="Conformance per vector">"#
    );
    for (i, v) in t.vectors.iter().enumerate() {
        let (x, y) = (
            (i % per_row) as f64 * (side + 2.0),
            (i / per_row) as f64 * (side + 2.0),
        );
        let colour = if v.passed() { "#1a7f37" } else { "#cf222e" };
        let title = match &v.error {
            Some(e) => format!("vector {}: {e}", v.index),
            None => format!(
                "vector {}: vs tract {}, vs expected {}",
                v.index,
                deviation_cell(v.vs_tract),
                deviation_cell(v.vs_expected)
            ),
        };
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{side}" height="{side}" rx="2" fill="{colour}"><title>{}</title></rect>"#,
            esc(&title)
        );
    }
    svg.push_str("</svg>");
    let passed = t.vectors.iter().filter(|v| v.passed()).count();
    format!(
        "{svg}<p>{passed} of {} vectors within tolerance; largest deviation <code>{}</code> \
         (abs / rel{}).</p>",
        t.vectors.len(),
        esc(&largest_deviation(t)),
        if r.tolerance.steps > 0 || largest_deviation(t).contains("steps") {
            ", or quantization steps exact/one/more"
        } else {
            ""
        }
    )
}

/// The warm runs' histogram, with the median, p95 and p99 marked.
fn histogram(t: &TargetReport) -> Option<String> {
    let l = &t.latency;
    let d = l.warm.as_ref()?;
    let (w, h, left, bottom, top) = (440.0, 214.0, 40.0, 28.0, 24.0);
    let plot_w = w - left - 10.0;
    let plot_h = h - bottom - top;
    let bins = d.counts.len().max(1) as f64;
    let peak = f64::from(d.counts.iter().copied().max().unwrap_or(0).max(1));
    let span = d.bin_width_us * bins;
    let x_of = |us: f64| left + plot_w * ((us - d.bin_start_us) / span).clamp(0.0, 1.0);
    let mut svg = format!(
        r#"<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="Histogram of warm inference times">"#
    );
    for (i, &c) in d.counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let bh = plot_h * f64::from(c) / peak;
        let lo = d.bin_start_us + d.bin_width_us * i as f64;
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#54aeff"><title>{} – {}: {c} runs</title></rect>"##,
            left + plot_w * i as f64 / bins + 0.5,
            top + plot_h - bh,
            (plot_w / bins - 1.0).max(0.5),
            esc(&micros(lo)),
            esc(&micros(lo + d.bin_width_us)),
        );
    }
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{left}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}"/><line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{y:.1}"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="end">{peak}</text><text x="{tx:.1}" y="{y:.1}" text-anchor="end">0</text><text x="{left}" y="{ly:.1}">{lo}</text><text x="{x2:.1}" y="{ly:.1}" text-anchor="end">{hi}</text>"#,
        y = top + plot_h,
        x2 = left + plot_w,
        tx = left - 4.0,
        ty = top + 8.0,
        ly = top + plot_h + 16.0,
        lo = esc(&micros(d.bin_start_us)),
        hi = esc(&micros(d.bin_start_us + span)),
    );
    let marks = [
        ("median", l.median_us, "#0550ae", ""),
        ("p95", l.p95_us, "#bf8700", "4 3"),
        ("p99", l.p99_us, "#cf222e", "2 2"),
    ];
    for (k, (name, value, colour, dash)) in marks.iter().enumerate() {
        let Some(us) = value else { continue };
        let x = x_of(*us);
        let _ = write!(
            svg,
            r#"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"><title>{name} {v}</title></line><text x="{tx:.1}" y="{ty:.1}" text-anchor="end" style="fill:{colour}">{name} {v}</text>"#,
            y = top + plot_h,
            tx = left + 130.0 * (k + 1) as f64,
            ty = 12.0,
            v = esc(&micros(*us)),
        );
    }
    svg.push_str("</svg>");
    let above = if d.above > 0 {
        format!(
            " {} slower run(s) above p99, up to {}, not drawn.",
            d.above,
            micros(d.max_us)
        )
    } else {
        String::new()
    };
    Some(format!(
        "{svg}<p class=\"small\">{} runs of one inference each.{}</p>",
        l.runs,
        esc(&above)
    ))
}

/// Cold start (compile + instantiate + first inference) against one warm inference,
/// on a log scale: the gap is why a detector is instantiated once.
fn cold_start(t: &TargetReport) -> Option<String> {
    let l = &t.latency;
    let bars: Vec<(&str, f64)> = [
        ("cold, compiled", l.cold_start_us),
        ("cold, from cache", l.cold_start_cached_us),
        ("one warm inference", l.median_us),
    ]
    .into_iter()
    .filter_map(|(name, v)| Some((name, v?)))
    .collect();
    if bars.is_empty() || t.device.is_some() {
        return None;
    }
    let (w, left, row) = (440.0, 130.0, 26.0);
    let h = row * bars.len() as f64 + 26.0;
    let axis = LogAxis::around(bars.iter().map(|b| b.1), left, w - 70.0)?;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="Cold start against a warm inference, log scale">"#
    );
    axis.draw(&mut svg, 0.0, h - 24.0);
    for (i, (name, us)) in bars.iter().enumerate() {
        let y = row * i as f64 + 4.0;
        let x = axis.x(*us);
        let _ = write!(
            svg,
            r##"<text x="{lx:.1}" y="{ty:.1}" text-anchor="end">{name}</text><rect x="{left}" y="{y:.1}" width="{bw:.1}" height="16" fill="{fill}"/><text x="{vx:.1}" y="{ty:.1}">{v}</text>"##,
            lx = left - 6.0,
            ty = y + 12.0,
            bw = (x - left).max(1.0),
            fill = if i + 1 == bars.len() {
                "#54aeff"
            } else {
                "#8c959f"
            },
            vx = x + 4.0,
            v = esc(&micros(*us)),
        );
    }
    svg.push_str("</svg>");
    Some(format!(
        "{svg}<p class=\"small\">Log scale. Cold: compile, instantiate and run once, \
         median of three.</p>"
    ))
}

/// The artifact as one stacked bar: code, weights (the model blob), metadata.
fn size_split(t: &TargetReport) -> String {
    let s = &t.size;
    let parts = [
        ("code", s.code, "#0969da"),
        ("weights", s.weights, "#8250df"),
        ("metadata", s.metadata, "#bf8700"),
    ];
    let total = s.total.max(s.code + s.weights + s.metadata).max(1) as f64;
    let w = 440.0;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {w} 58" width="{w}" height="58" role="img" aria-label="Artifact size split">"#
    );
    let mut x = 0.0;
    for (i, (name, n, colour)) in parts.iter().enumerate() {
        let bw = w * *n as f64 / total;
        if bw > 0.0 {
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="0" width="{bw:.1}" height="20" fill="{colour}"><title>{name}: {}</title></rect>"#,
                esc(&bytes(*n))
            );
        }
        x += bw;
        let lx = 150.0 * i as f64;
        let _ = write!(
            svg,
            r#"<rect x="{lx}" y="32" width="10" height="10" fill="{colour}"/><text x="{tx}" y="41">{name} {} ({:.0}%)</text>"#,
            esc(&bytes(*n)),
            100.0 * *n as f64 / total,
            tx = lx + 14.0,
        );
    }
    svg.push_str("</svg>");
    format!(
        "{svg}<p>{} in total: code is the runtime and its kernels, weights the model blob.</p>",
        esc(&bytes(s.total))
    )
}

fn memory(t: &TargetReport) -> String {
    let mut out = format!(
        "<p>Arena (static plan): <b>{}</b></p>",
        esc(&bytes(t.memory.arena_bytes))
    );
    if let Some(pages) = t.memory.wasm_pages {
        let _ = write!(
            out,
            "<p>Linear memory after the warm runs: <b>{pages} page(s), {}</b></p>",
            esc(&bytes(pages * 65536))
        );
    }
    if let Some(d) = &t.device {
        out.push_str(&meter("flash", d.flash_bytes, d.flash_budget));
        out.push_str(&meter("RAM", d.ram_bytes, d.ram_budget));
        let _ = write!(
            out,
            "<p class=\"small\">Stack: {} measured peak of {} reserved. Flash: {} of it the \
             detector, the rest test firmware.</p>",
            esc(&bytes(d.stack_peak_bytes)),
            esc(&bytes(d.stack_reserved_bytes)),
            esc(&bytes(d.detector_flash_bytes))
        );
    }
    out
}

/// `used` of `budget` as a bar.
fn meter(name: &str, used: u64, budget: u64) -> String {
    let w = 440.0;
    let share = if budget == 0 {
        1.0
    } else {
        (used as f64 / budget as f64).min(1.0)
    };
    let colour = if used > budget { "#cf222e" } else { "#1a7f37" };
    format!(
        r##"<svg viewBox="0 0 {w} 34" width="{w}" height="34" role="img" aria-label="{name} use"><rect x="0" y="0" width="{w}" height="14" fill="#eaeef2"/><rect x="0" y="0" width="{bw:.1}" height="14" fill="{colour}"/><text x="0" y="28">{name}: {} of {} ({:.1}%)</text></svg>"##,
        esc(&bytes(used)),
        esc(&bytes(budget)),
        100.0 * used as f64 / budget.max(1) as f64,
        bw = w * share,
    )
}

fn device_figures(d: &super::Device, runs: usize) -> String {
    if runs == 0 {
        return "<p>Not measured: no vector ran without an error.</p>".to_string();
    }
    let per_mac = d
        .instructions_per_mac
        .map(|x| format!(", {x:.2} per multiply-accumulate"))
        .unwrap_or_default();
    format!(
        "<p><b>{}</b> instructions per inference{}, the same on every run ({runs} runs); \
         init {} instructions.</p><p class=\"small\">{}</p>",
        d.instructions,
        esc(&per_mac),
        d.init_instructions,
        esc(&d.counting)
    )
}

/// Every vector in a table, folded away.
fn vector_table(page: &mut String, t: &TargetReport) {
    page.push_str(
        "<details><summary>Every vector</summary><table><thead><tr><th class=\"num\">vector</th>\
         <th>vs tract (abs / rel)</th><th>vs expected (abs / rel)</th><th>finding</th>\
         <th>result</th></tr></thead><tbody>",
    );
    for v in &t.vectors {
        let finding = match (&v.finding, &v.error) {
            (_, Some(e)) => e.clone(),
            (Some(found), None) => found.to_string(),
            (None, None) => "–".to_string(),
        };
        let (class, word) = if v.passed() {
            ("pass", "PASS")
        } else {
            ("fail", "FAIL")
        };
        let _ = write!(
            page,
            "<tr><td class=\"num\">{}</td><td><code>{}</code></td><td><code>{}</code></td>\
             <td>{}</td><td><span class=\"tag {class}\">{word}</span></td></tr>",
            v.index,
            esc(&deviation_cell(v.vs_tract)),
            esc(&deviation_cell(v.vs_expected)),
            esc(&finding)
        );
    }
    let _ = write!(
        page,
        "</tbody></table><p class=\"small\">Artifact: <code>{}</code></p></details>",
        esc(&t.artifact)
    );
}

/// `text` safe inside HTML text and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample_report;

    #[test]
    fn page_is_self_contained_and_escaped() {
        let mut report = sample_report();
        report.detector = "<script>alert(1)</script>".into();
        let page = render(&report);
        assert!(!page.contains("<script"), "text is escaped: {page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        // Nothing is fetched: no URL anywhere but the policy's keywords.
        for needle in [
            "http:",
            "https:",
            "src=",
            "url(",
            "<link rel=\"stylesheet\"",
        ] {
            assert!(!page.contains(needle), "{needle} in the page");
        }
        // The overview box plot, the histogram, cold start, size, conformance strip.
        assert!(page.matches("<svg").count() >= 5, "{page}");
        assert_eq!(page.matches("<svg").count(), page.matches("</svg>").count());
        assert!(page.contains("unreachable"), "the failed device is shown");
        assert!(page.contains("connection refused"));
        assert!(page.contains("<b>wasmedge</b>: `wasmedge` is not on PATH"));
        // Every vector has a square with its deviations on hover.
        assert!(page.contains("vector 1: vs tract 3.0e-7 / 2.0e-6, vs expected 5.0e-1 / 6.2e-2"));
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(1.0), "1 µs");
        assert_eq!(tick(0.1), "0.1 µs");
        assert_eq!(tick(200.0), "200 µs");
        assert_eq!(tick(5_000.0), "5 ms");
        assert_eq!(tick(10_000_000.0), "10 s");
    }

    #[test]
    fn log_axis_covers_the_values() {
        let axis = LogAxis::around([3.0, 4_500.0].into_iter(), 0.0, 100.0).unwrap();
        assert_eq!((axis.lo, axis.hi), (1.0, 10_000.0));
        assert!((axis.x(100.0) - 50.0).abs() < 1e-9);
        assert!(LogAxis::around([0.0, f64::NAN].into_iter(), 0.0, 1.0).is_none());
    }
}
