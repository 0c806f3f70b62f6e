//! Convolution (NCHW; 1-D runs as 2-D with height 1): grouped convolutions go
//! through per-output-row im2col and [`super::gemm::gemm`]; pointwise ones use the
//! input directly; depthwise ones use a direct kernel.

use super::act::Act;
use super::gemm::gemm;

/// Geometry of one convolution (or pooling window), all in 2-D form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Batch.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height and width.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub m: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride along height.
    pub sh: usize,
    /// Stride along width.
    pub sw: usize,
    /// Dilation along height.
    pub dh: usize,
    /// Dilation along width.
    pub dw: usize,
    /// Padding at the top.
    pub pt: usize,
    /// Padding on the left.
    pub pl: usize,
    /// Groups.
    pub group: usize,
}

/// Which algorithm a convolution uses; decided from the geometry alone so that the
/// converter (which sizes the scratch) and the runtime always agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKind {
    /// 1×1, stride 1, no padding: GEMM straight on the input.
    Pointwise,
    /// One input channel per group: direct loops.
    Depthwise,
    /// Everything else: im2col one output row at a time, then GEMM.
    Im2col,
}

impl Geometry {
    /// The algorithm for this geometry.
    pub fn kind(&self) -> ConvKind {
        let cg = self.c / self.group;
        if self.kh == 1
            && self.kw == 1
            && self.sh == 1
            && self.sw == 1
            && self.pt == 0
            && self.pl == 0
            && self.oh == self.h
            && self.ow == self.w
        {
            ConvKind::Pointwise
        } else if cg == 1 {
            ConvKind::Depthwise
        } else {
            ConvKind::Im2col
        }
    }

    /// Scratch elements the algorithm needs.
    pub fn scratch_elems(&self) -> usize {
        match self.kind() {
            ConvKind::Im2col => (self.c / self.group) * self.kh * self.kw * self.ow,
            _ => 0,
        }
    }

    /// Input row index for output row `o` and kernel row `k`, if inside the input.
    #[inline]
    fn in_row(&self, o: usize, k: usize) -> Option<usize> {
        (o * self.sh + k * self.dh)
            .checked_sub(self.pt)
            .filter(|&r| r < self.h)
    }

    /// Range of output columns whose input column for kernel column `k` is inside
    /// the input, and the input column of the first one.
    #[inline]
    fn valid_cols(&self, k: usize) -> (usize, usize) {
        let off = k * self.dw;
        // First ox with ox*sw + off >= pl.
        let lo = if off >= self.pl {
            0
        } else {
            (self.pl - off).div_ceil(self.sw)
        };
        // Last ox with ox*sw + off - pl < w.
        let hi = if self.w + self.pl > off {
            ((self.w + self.pl - off - 1) / self.sw + 1).min(self.ow)
        } else {
            0
        };
        let lo = lo.min(self.ow);
        (lo, hi.max(lo))
    }
}

/// Reference convolution: direct loops over everything, used to test the fast paths.
pub fn conv_ref(g: &Geometry, x: &[f32], wt: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let (cg, mg) = (g.c / g.group, g.m / g.group);
    for n in 0..g.n {
        for m in 0..g.m {
            let grp = m / mg;
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut acc = bias.map_or(0.0, |b| b[m]);
                    for ci in 0..cg {
                        let c = grp * cg + ci;
                        for ky in 0..g.kh {
                            let Some(iy) = g.in_row(oy, ky) else { continue };
                            for kx in 0..g.kw {
                                let ix = (ox * g.sw + kx * g.dw).wrapping_sub(g.pl);
                                if ix >= g.w {
                                    continue;
                                }
                                acc += x[((n * g.c + c) * g.h + iy) * g.w + ix]
                                    * wt[((m * cg + ci) * g.kh + ky) * g.kw + kx];
                            }
                        }
                    }
                    y[((n * g.m + m) * g.oh + oy) * g.ow + ox] = acc;
                }
            }
        }
    }
}

/// Convolution with bias and activation; `scratch` must hold `g.scratch_elems()`.
pub fn conv(
    g: &Geometry,
    x: &[f32],
    wt: &[f32],
    bias: Option<&[f32]>,
    act: Act,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    let plane = g.oh * g.ow;
    // Start every output channel from its bias; the algorithms accumulate onto it.
    for (ch, out) in y.chunks_exact_mut(plane).enumerate() {
        out.fill(bias.map_or(0.0, |b| b[ch % g.m]));
    }
    let (cg, mg) = (g.c / g.group, g.m / g.group);
    let kdim = cg * g.kh * g.kw;
    match g.kind() {
        ConvKind::Pointwise => {
            for n in 0..g.n {
                for grp in 0..g.group {
                    let xs = &x[(n * g.c + grp * cg) * plane..];
                    let ws = &wt[grp * mg * kdim..];
                    let ys = &mut y[(n * g.m + grp * mg) * plane..];
                    gemm(mg, plane, cg, ws, kdim, xs, plane, ys, plane);
                }
            }
        }
        ConvKind::Depthwise => depthwise(g, x, wt, y),
        ConvKind::Im2col => {
            let col = &mut scratch[..kdim * g.ow];
            for n in 0..g.n {
                for grp in 0..g.group {
                    for oy in 0..g.oh {
                        im2col_row(g, &x[(n * g.c + grp * cg) * g.h * g.w..], cg, oy, col);
                        let ws = &wt[grp * mg * kdim..];
                        let ys = &mut y[(n * g.m + grp * mg) * plane + oy * g.ow..];
                        gemm(mg, g.ow, kdim, ws, kdim, col, g.ow, ys, plane);
                    }
                }
            }
        }
    }
    act.apply(y);
}

/// Fills `col[(ci*kh + ky)*kw + kx][ox]` for one output row.
fn im2col_row(g: &Geometry, x: &[f32], cg: usize, oy: usize, col: &mut [f32]) {
    for ci in 0..cg {
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = &mut col[((ci * g.kh + ky) * g.kw + kx) * g.ow..][..g.ow];
                let Some(iy) = g.in_row(oy, ky) else {
                    row.fill(0.0);
                    continue;
                };
                let (lo, hi) = g.valid_cols(kx);
                row[..lo].fill(0.0);
                row[hi..].fill(0.0);
                if lo >= hi {
                    continue;
                }
                let src = &x[(ci * g.h + iy) * g.w..][..g.w];
                let first = lo * g.sw + kx * g.dw - g.pl;
                if g.sw == 1 {
                    row[lo..hi].copy_from_slice(&src[first..first + (hi - lo)]);
                } else {
                    for (o, v) in row[lo..hi].iter_mut().enumerate() {
                        *v = src[first + o * g.sw];
                    }
                }
            }
        }
    }
}

/// One input channel per group (depthwise, possibly with a channel multiplier).
fn depthwise(g: &Geometry, x: &[f32], wt: &[f32], y: &mut [f32]) {
    let mg = g.m / g.group;
    for n in 0..g.n {
        for m in 0..g.m {
            let c = m / mg;
            let xs = &x[(n * g.c + c) * g.h * g.w..][..g.h * g.w];
            let ws = &wt[m * g.kh * g.kw..][..g.kh * g.kw];
            let ys = &mut y[(n * g.m + m) * g.oh * g.ow..][..g.oh * g.ow];
            for oy in 0..g.oh {
                let out = &mut ys[oy * g.ow..][..g.ow];
                for ky in 0..g.kh {
                    let Some(iy) = g.in_row(oy, ky) else { continue };
                    let src = &xs[iy * g.w..][..g.w];
                    for kx in 0..g.kw {
                        let wv = ws[ky * g.kw + kx];
                        let (lo, hi) = g.valid_cols(kx);
                        if lo >= hi {
                            continue;
                        }
                        let first = lo * g.sw + kx * g.dw - g.pl;
                        if g.sw == 1 {
                            for (o, &s) in
                                out[lo..hi].iter_mut().zip(&src[first..first + (hi - lo)])
                            {
                                *o += wv * s;
                            }
                        } else {
                            for (i, o) in out[lo..hi].iter_mut().enumerate() {
                                *o += wv * src[first + i * g.sw];
                            }
                        }
                    }
                }
            }
        }
    }
}
