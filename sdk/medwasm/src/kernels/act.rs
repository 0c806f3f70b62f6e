//! Elementwise activations, fused into Gemm/Conv/Binary or run on their own.

/// An activation and its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// Identity.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `x` if positive else `alpha * x`.
    LeakyRelu(f32),
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `min(max(x, lo), hi)`.
    Clip(f32, f32),
}

impl Act {
    /// Decodes `[kind, alpha bits, beta bits]`.
    pub fn decode(kind: u32, alpha: u32, beta: u32) -> Option<Act> {
        let (a, b) = (f32::from_bits(alpha), f32::from_bits(beta));
        Some(match kind {
            0 => Act::None,
            1 => Act::Relu,
            2 if a.is_finite() => Act::LeakyRelu(a),
            3 => Act::Sigmoid,
            4 => Act::Tanh,
            // NaN bounds would silently poison outputs; infinite ones are fine.
            5 if !a.is_nan() && !b.is_nan() && a <= b => Act::Clip(a, b),
            _ => return None,
        })
    }

    /// Encodes as `[kind, alpha bits, beta bits]`.
    pub fn encode(self) -> [u32; 3] {
        match self {
            Act::None => [0, 0, 0],
            Act::Relu => [1, 0, 0],
            Act::LeakyRelu(a) => [2, a.to_bits(), 0],
            Act::Sigmoid => [3, 0, 0],
            Act::Tanh => [4, 0, 0],
            Act::Clip(lo, hi) => [5, lo.to_bits(), hi.to_bits()],
        }
    }

    /// Applies in place.
    pub fn apply(self, data: &mut [f32]) {
        match self {
            Act::None => {}
            Act::Relu => data.iter_mut().for_each(|v| *v = v.max(0.0)),
            Act::LeakyRelu(a) => data.iter_mut().for_each(|v| {
                if *v < 0.0 {
                    *v *= a
                }
            }),
            Act::Sigmoid => data.iter_mut().for_each(|v| *v = sigmoid(*v)),
            Act::Tanh => data.iter_mut().for_each(|v| *v = libm::tanhf(*v)),
            Act::Clip(lo, hi) => data.iter_mut().for_each(|v| *v = v.max(lo).min(hi)),
        }
    }
}

/// Logistic function, written to avoid overflow for large |x|.
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + libm::expf(-x))
    } else {
        let e = libm::expf(x);
        e / (1.0 + e)
    }
}
