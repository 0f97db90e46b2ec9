//! A decoded YUV picture as the HEIF code converts it to RGB, whichever codec made it (AV1 in
//! [`super::av1`], HEVC in [`super::hevc`]).

/// Chroma layout of a decoded picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    Mono,
    I420,
    I422,
    I444,
}

/// The samples of one row of a plane.
#[derive(Debug, Clone, Copy)]
pub(super) enum Row<'a> {
    Eight(&'a [u8]),
    /// 10- or 12-bit samples, one `u16` each.
    High(&'a [u16]),
}

impl Row<'_> {
    pub(super) fn get(&self, x: usize) -> u16 {
        match self {
            Row::Eight(r) => u16::from(r[x]),
            Row::High(r) => r[x],
        }
    }
}

/// What a picture is: its size, sample depth, chroma layout and colour description.
#[derive(Debug, Clone, Copy)]
pub(super) struct Info {
    pub(super) width: u32,
    pub(super) height: u32,
    /// Bits per sample: 8, 10 or 12.
    pub(super) bits: u8,
    pub(super) layout: Layout,
    /// The bitstream's colour description (CICP codes): colour primaries, transfer
    /// characteristics, matrix coefficients, and whether the samples are full range. The
    /// container's `nclx` box, when there is one, wins over it.
    pub(super) primaries: u32,
    pub(super) transfer: u32,
    pub(super) matrix: u32,
    pub(super) full_range: bool,
}

impl Info {
    /// Width and height of `plane` (0: luma, 1 and 2: chroma).
    pub(super) fn plane_size(&self, plane: usize) -> (usize, usize) {
        let (w, h) = (self.width as usize, self.height as usize);
        match (plane, self.layout) {
            (0, _) | (_, Layout::I444) => (w, h),
            (_, Layout::I422) => (w.div_ceil(2), h),
            (_, Layout::I420) => (w.div_ceil(2), h.div_ceil(2)),
            (_, Layout::Mono) => (0, 0),
        }
    }
}

/// A decoded picture: its [`Info`] and its rows.
pub(super) trait Picture {
    fn info(&self) -> &Info;

    /// Row `y` of `plane`. Panics if `y` or `plane` is out of range (a bug of the caller, not
    /// of the input: the sizes were checked when the picture was made).
    fn row(&self, plane: usize, y: usize) -> Row<'_>;
}
