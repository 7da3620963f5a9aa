//! Routing of gates on far-apart qubits along the chain, with a layout that may stay permuted
//! for the length of a run.
//!
//! A gate on qubits that are not neighbours on the chain needs swaps (each a two-site update)
//! to bring them together. Swapping them back after the gate doubles the cost of every far
//! gate; leaving them where they are is free now but may make later gates far. A [`Plan`] is
//! made from the circuit alone (not the state) before a run: it keeps a layout (which qubit
//! is on which site) and, at every far gate, weighs these candidates by the swaps they need
//! now plus the swaps the next `2n` multi-qubit gates would need in the layout each leaves
//! (and, when that window reaches the end of the circuit, the swaps that bring every qubit
//! home):
//!
//! - each way of gathering the gate's qubits (which of them stays put), leaving them there;
//! - gathering them and swapping them back afterwards (the layout is unchanged).
//!
//! Ties go to swapping back. On circuits of nearest-neighbour layers with a few long-range
//! gates (a brick with one long-range CX per layer) the look-ahead sees that a moved qubit
//! would break the next layer and swaps back; on random far-apart pairs it leaves qubits
//! where they are, which roughly halves the swaps. The plan ends with the swaps that sort
//! the layout back to qubit `i` on site `i` (odd-even transposition, exactly one swap per
//! inversion), so every read-out after a run sees the usual order.

use crate::circuit::Circuit;

/// How a run routes gates on qubits that are not neighbours on the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Routing {
    /// Weigh leaving gathered qubits where they are against swapping them back, by the swaps
    /// the next `2n` multi-qubit gates would need (see the module docs of
    /// `backend::mps::routing`); qubits are sorted home at the end of the run.
    #[default]
    Lookahead,
    /// Swap the qubits back after every gate, so qubit `i` is on site `i` between gates.
    SwapBack,
}

impl Routing {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Routing::Lookahead => "lookahead",
            Routing::SwapBack => "swap-back",
        }
    }
}

/// Which gate argument sits on each site of a window of one to three sites: `arg_at[j]` is
/// the argument on window offset `j`. Held inline (plans have one per gate), read as a slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ArgAt {
    len: usize,
    at: [usize; 3],
}

impl ArgAt {
    /// The one-site window of a one-qubit gate.
    pub const ONE: ArgAt = ArgAt { len: 1, at: [0; 3] };

    /// From the arguments on offsets `0..args.len()` (one to three of them).
    pub fn new(args: &[usize]) -> Self {
        debug_assert!((1..=3).contains(&args.len()));
        let mut at = [0; 3];
        at[..args.len()].copy_from_slice(args);
        ArgAt {
            len: args.len(),
            at,
        }
    }
}

impl std::ops::Deref for ArgAt {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        &self.at[..self.len]
    }
}

/// Where a gate is applied: the swaps that bring its qubits together, the window they end
/// in, and which gate argument sits on each window site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub swaps: Vec<usize>,
    pub start: usize,
    pub arg_at: ArgAt,
}

/// The swaps that gather the qubits on `sites` (distinct) into a window: the qubit of rank
/// `anchor` (by site) stays, the others move towards it.
pub(crate) fn route(sites: &[usize], anchor: usize) -> Route {
    let mut swaps = Vec::new();
    let (start, arg_at) = route_into(sites, anchor, &mut swaps);
    Route {
        swaps,
        start,
        arg_at,
    }
}

/// [`route`] with the swaps written into `swaps` (cleared first); returns the window start
/// and the argument on each window site.
fn route_into(sites: &[usize], anchor: usize, swaps: &mut Vec<usize>) -> (usize, ArgAt) {
    let k = sites.len();
    let mut order = ArgAt::new(&[0, 1, 2][..k]);
    order.at[..k].sort_unstable_by_key(|&a| sites[a]);
    // The rank-r smallest of distinct sites is at least r, so start >= 0, and the largest is
    // at most n - 1, so the window fits.
    let start = sites[order[anchor]] - anchor;
    swaps.clear();
    for rank in (0..anchor).rev() {
        let mut pos = sites[order[rank]];
        while pos < start + rank {
            swaps.push(pos);
            pos += 1;
        }
    }
    for rank in anchor + 1..k {
        let mut pos = sites[order[rank]];
        while pos > start + rank {
            swaps.push(pos - 1);
            pos -= 1;
        }
    }
    (start, order)
}

/// The swaps (written into `swaps`, cleared first) that bring two qubits on `sites` together
/// on the window `start, start + 1` (between them): the lower one moves up to `start`, the
/// upper one down to `start + 1`. Returns the argument on each window site.
fn meet_into(sites: &[usize], start: usize, swaps: &mut Vec<usize>) -> ArgAt {
    let order = if sites[0] < sites[1] {
        ArgAt::new(&[0, 1])
    } else {
        ArgAt::new(&[1, 0])
    };
    let (lo, hi) = (sites[order[0]], sites[order[1]]);
    swaps.clear();
    swaps.extend(lo..start);
    swaps.extend((start + 1..hi).rev());
    order
}

/// Which qubit is on which site.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    site_of: Vec<usize>,
    qubit_at: Vec<usize>,
}

impl Layout {
    /// Qubit `i` on site `i`.
    pub fn identity(n: usize) -> Self {
        let mut layout = Layout::default();
        layout.reset(n);
        layout
    }

    /// Back to qubit `i` on site `i` for `n` qubits, in the buffers it has.
    pub fn reset(&mut self, n: usize) {
        self.site_of.clear();
        self.site_of.extend(0..n);
        self.qubit_at.clear();
        self.qubit_at.extend(0..n);
    }

    /// The site of `qubit`.
    pub fn site(&self, qubit: usize) -> usize {
        self.site_of[qubit]
    }

    /// Exchanges the qubits on sites `b` and `b + 1`.
    pub fn swap(&mut self, b: usize) {
        self.qubit_at.swap(b, b + 1);
        self.site_of[self.qubit_at[b]] = b;
        self.site_of[self.qubit_at[b + 1]] = b + 1;
    }

    /// Swaps needed to gather `qubits` into a window.
    fn gather_cost(&self, qubits: &[usize]) -> usize {
        let (lo, hi) = qubits
            .iter()
            .map(|&q| self.site_of[q])
            .fold((usize::MAX, 0), |(lo, hi), s| (lo.min(s), hi.max(s)));
        // Sites between lo and hi not holding one of the gate's qubits each need a swap
        // past (at least) one of them.
        (hi - lo + 1) - qubits.len()
    }

    /// Inversions of the layout: the adjacent swaps that sort it home.
    fn inversions(&self) -> usize {
        // Fenwick tree over qubit labels, scanning sites right to left; on the stack for
        // chains of up to 64 qubits (the look-ahead evaluates this once per candidate).
        let n = self.qubit_at.len();
        let mut small = [0usize; 65];
        let mut large = Vec::new();
        let tree: &mut [usize] = if n < small.len() {
            &mut small[..=n]
        } else {
            large.resize(n + 1, 0);
            &mut large
        };
        let mut count = 0;
        for &q in self.qubit_at.iter().rev() {
            let mut i = q;
            while i > 0 {
                count += tree[i];
                i &= i - 1;
            }
            let mut i = q + 1;
            while i <= n {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
        }
        count
    }

    /// Odd-even transposition rounds that sort the layout home, one swap per inversion,
    /// alternating direction so a centre walking with the swaps travels little. Leaves the
    /// layout at the identity.
    pub fn sort_home(&mut self) -> Vec<usize> {
        let mut swaps = Vec::new();
        self.sort_home_with(|b| swaps.push(b));
        swaps
    }

    /// [`sort_home`](Self::sort_home), handing each swap to `swap` in turn.
    pub fn sort_home_with(&mut self, mut swap: impl FnMut(usize)) {
        let n = self.qubit_at.len();
        let mut round = 0usize;
        while !self.is_identity() {
            // Pairs (b, b + 1) with b of this round's parity, in the round's direction.
            let count = (n - round % 2) / 2;
            for i in 0..count {
                let j = if round % 2 == 1 { count - 1 - i } else { i };
                let b = round % 2 + 2 * j;
                if self.qubit_at[b] > self.qubit_at[b + 1] {
                    self.swap(b);
                    swap(b);
                }
            }
            round += 1;
        }
    }

    fn is_identity(&self) -> bool {
        self.qubit_at.iter().enumerate().all(|(s, &q)| s == q)
    }
}

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Exchange the qubits on sites `b` and `b + 1`.
    Swap(usize),
    /// Instruction `inst` of the circuit on the window of sites `start ..`; `arg_at[j]` is the
    /// gate argument on window offset `j` (`[0]` for a one-qubit gate).
    Gate {
        inst: usize,
        start: usize,
        arg_at: ArgAt,
    },
    /// One two-site update on sites `start, start + 1`: the product of the plan's `parts`
    /// (see [`Plan::parts`]), in order.
    Fused { start: usize, parts: PartSpan },
}

/// Where a fused update's factors lie in [`Plan::parts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PartSpan {
    begin: usize,
    end: usize,
}

/// A factor of a fused two-site update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// Exchange the two qubits.
    Swap,
    /// One-qubit instruction `inst` on window offset `offset`.
    One { inst: usize, offset: usize },
    /// Two-qubit instruction `inst`, gate argument `arg_at[j]` on window offset `j`.
    Two { inst: usize, arg_at: ArgAt },
}

impl Part {
    /// Whether the part is a circuit instruction (not a routing swap).
    pub fn is_instruction(&self) -> bool {
        !matches!(self, Part::Swap)
    }
}

/// No entry (an index list's end, a site no fused update holds).
const NONE: usize = usize::MAX;

/// Working space of [`fuse`], kept across plans.
#[derive(Debug, Default)]
struct FuseBuffers {
    /// last[s]: the fused update in the output that last touched site s, if nothing else
    /// has since.
    last: Vec<usize>,
    /// One-qubit gates waiting for the next two-site update on their site: a list per site
    /// (`head`, `tail` into `pending`, entries `(instruction, next)`).
    head: Vec<usize>,
    tail: Vec<usize>,
    pending: Vec<(usize, usize)>,
    /// Every part with the output index of its fused update, in the order it joined.
    owned: Vec<(usize, Part)>,
    /// Where each output step's parts start in the plan.
    begin: Vec<usize>,
}

/// Fuses runs of steps into two-site updates: consecutive two-site steps on the same pair of
/// sites (nothing else touching either site between them) become one update, and each
/// one-qubit gate joins the two-site update on its site just before it, or else the next
/// one (nothing else touching the site between). One truncation instead of several, and
/// fewer factorizations: on circuits that repeat gates on a pair (Trotter steps, adders)
/// most of the updates. Gates of three or more qubits are barriers for their sites;
/// one-qubit gates with no two-site update to join stay on their own. Writes the plan's
/// steps and parts (both cleared first).
fn fuse(steps: &[Step], n: usize, f: &mut FuseBuffers, plan: &mut Plan) {
    let out = &mut plan.steps;
    out.clear();
    let FuseBuffers {
        last,
        head,
        tail,
        pending,
        owned,
        begin,
    } = f;
    for v in [&mut *last, &mut *head, &mut *tail] {
        v.clear();
        v.resize(n, NONE);
    }
    pending.clear();
    owned.clear();
    // The one-qubit gates pending on site s, in order, emptying the list.
    let drain =
        |head: &mut [usize], pending: &[(usize, usize)], s: usize, f: &mut dyn FnMut(usize)| {
            let mut i = std::mem::replace(&mut head[s], NONE);
            while i != NONE {
                f(pending[i].0);
                i = pending[i].1;
            }
        };
    let flush = |out: &mut Vec<Step>, head: &mut [usize], pending: &[(usize, usize)], s: usize| {
        drain(head, pending, s, &mut |inst| {
            out.push(Step::Gate {
                inst,
                start: s,
                arg_at: ArgAt::ONE,
            })
        });
    };
    for step in steps {
        let (start, part) = match *step {
            Step::Swap(b) => (b, Part::Swap),
            Step::Gate {
                inst,
                start,
                arg_at,
            } if arg_at.len() == 1 => {
                match last[start] {
                    NONE => {
                        let i = pending.len();
                        pending.push((inst, NONE));
                        match head[start] {
                            NONE => head[start] = i,
                            _ => pending[tail[start]].1 = i,
                        }
                        tail[start] = i;
                    }
                    i => {
                        if let Step::Fused { start: w, .. } = out[i] {
                            owned.push((
                                i,
                                Part::One {
                                    inst,
                                    offset: start - w,
                                },
                            ));
                        }
                    }
                }
                continue;
            }
            Step::Gate {
                inst,
                start,
                arg_at,
            } if arg_at.len() == 2 => (start, Part::Two { inst, arg_at }),
            Step::Gate { start, arg_at, .. } => {
                for s in start..start + arg_at.len() {
                    flush(out, head, pending, s);
                    last[s] = NONE;
                }
                out.push(step.clone());
                continue;
            }
            Step::Fused { .. } => unreachable!("plans are fused once"),
        };
        match (last[start], last[start + 1]) {
            (i, j) if i == j && i != NONE => owned.push((i, part)),
            _ => {
                let i = out.len();
                for offset in 0..2 {
                    drain(head, pending, start + offset, &mut |inst| {
                        owned.push((i, Part::One { inst, offset }))
                    });
                }
                owned.push((i, part));
                out.push(Step::Fused {
                    start,
                    parts: PartSpan { begin: 0, end: 0 },
                });
                last[start] = i;
                last[start + 1] = i;
            }
        }
    }
    for s in 0..n {
        flush(out, head, pending, s);
    }
    // Each update's parts together, in the order they joined (a counting sort by update).
    begin.clear();
    begin.resize(out.len() + 1, 0);
    for &(i, _) in owned.iter() {
        begin[i + 1] += 1;
    }
    for i in 0..out.len() {
        begin[i + 1] += begin[i];
    }
    for (i, step) in out.iter_mut().enumerate() {
        if let Step::Fused { parts, .. } = step {
            *parts = PartSpan {
                begin: begin[i],
                end: begin[i + 1],
            };
        }
    }
    plan.parts.clear();
    plan.parts.resize(owned.len(), Part::Swap);
    for &(i, part) in owned.iter() {
        plan.parts[begin[i]] = part;
        begin[i] += 1;
    }
}

/// The steps of a run: the circuit's instructions in the given order with the swaps that
/// route them, then the swaps that bring every qubit home.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    /// The factors of every fused update, each update's together (see [`PartSpan`]).
    parts: Vec<Part>,
    /// Index of the first of the final swaps that sort the qubits home.
    pub home_from: usize,
}

/// Everything planning a run allocates, kept so the next plan on the thread reuses it: on a
/// circuit of a few gates the allocations had cost as much as the gates.
#[derive(Debug, Default)]
pub(crate) struct PlanBuffers {
    /// The instruction order (sweep order) and its working space.
    order: Vec<usize>,
    tmp: Vec<usize>,
    /// The multi-qubit instructions in run order, for the look-ahead.
    multi: Vec<usize>,
    /// The routed steps before fusion.
    raw: Vec<Step>,
    /// The layout while planning; a candidate route's swaps and the best one's.
    layout: Layout,
    candidate: Vec<usize>,
    best: Vec<usize>,
    fuse: FuseBuffers,
    /// The plan itself.
    pub plan: Plan,
    /// For the run: the layout, and the next multi-site step after each step.
    pub run_layout: Layout,
    pub next: Vec<Option<usize>>,
}

thread_local! {
    static BUFFERS: std::cell::Cell<Option<Box<PlanBuffers>>> = const { std::cell::Cell::new(None) };
}

/// Plans at most this many steps in buffers kept for the thread's next plan: a larger plan's
/// buffers are freed after its run.
const KEEP_STEPS: usize = 1 << 16;

/// Runs `f` with this thread's plan buffers. A nested call (a progress callback that runs
/// another circuit) gets fresh buffers.
pub(crate) fn with_plan_buffers<T>(f: impl FnOnce(&mut PlanBuffers) -> T) -> T {
    let mut buffers = BUFFERS.with(|c| c.take()).unwrap_or_default();
    let out = f(&mut buffers);
    if buffers.plan.steps.capacity() <= KEEP_STEPS && buffers.raw.capacity() <= KEEP_STEPS {
        BUFFERS.with(|c| c.set(Some(buffers)));
    }
    out
}

impl Plan {
    /// Plans `order` (instruction indices of `circuit`) under `routing`.
    #[cfg(test)]
    pub fn new(circuit: &Circuit, order: &[usize], routing: Routing) -> Self {
        let mut b = PlanBuffers::default();
        b.order.extend_from_slice(order);
        b.build(circuit, routing);
        b.plan
    }

    /// The factors of a fused update, in order.
    pub fn parts(&self, span: PartSpan) -> &[Part] {
        &self.parts[span.begin..span.end]
    }

    /// Number of swaps in the plan (alone or fused into an update).
    #[cfg(test)]
    pub fn swaps(&self) -> usize {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Swap(_) => 1,
                Step::Fused { parts, .. } => self
                    .parts(*parts)
                    .iter()
                    .filter(|p| !p.is_instruction())
                    .count(),
                Step::Gate { .. } => 0,
            })
            .sum()
    }
}

impl PlanBuffers {
    /// Plans `circuit` in its [`Circuit::sweep_order`] under `routing` into `self.plan`.
    pub fn plan(&mut self, circuit: &Circuit, routing: Routing) {
        circuit.sweep_order_into(&mut self.order, &mut self.tmp);
        self.build(circuit, routing);
    }

    /// Plans `self.order` (instruction indices of `circuit`) under `routing` into
    /// `self.plan`.
    fn build(&mut self, circuit: &Circuit, routing: Routing) {
        let n = circuit.n_qubits();
        let instructions = circuit.instructions();
        let PlanBuffers {
            order,
            multi,
            raw,
            layout,
            candidate,
            best,
            fuse: fuse_buffers,
            plan,
            ..
        } = self;
        multi.clear();
        multi.extend(
            order
                .iter()
                .copied()
                .filter(|&i| instructions[i].qubits().len() > 1),
        );
        let window = (2 * n).max(16);
        layout.reset(n);
        raw.clear();
        let mut next_multi = 0;
        for &i in order.iter() {
            let qubits = instructions[i].qubits();
            let k = qubits.len();
            let mut at = [0usize; 3];
            for (s, &q) in at.iter_mut().zip(qubits) {
                *s = layout.site(q);
            }
            let sites = &at[..k];
            if k == 1 {
                raw.push(Step::Gate {
                    inst: i,
                    start: sites[0],
                    arg_at: ArgAt::ONE,
                });
                continue;
            }
            next_multi += 1;
            let ((start, arg_at), back) = if layout.gather_cost(qubits) == 0 {
                (route_into(sites, 0, best), false)
            } else {
                match routing {
                    Routing::SwapBack => (route_into(sites, k / 2, best), true),
                    Routing::Lookahead => {
                        let ahead = Ahead {
                            instructions,
                            gates: &multi[next_multi..],
                            window,
                        };
                        choose(layout, sites, &ahead, candidate, best)
                    }
                }
            };
            for &b in best.iter() {
                layout.swap(b);
                raw.push(Step::Swap(b));
            }
            raw.push(Step::Gate {
                inst: i,
                start,
                arg_at,
            });
            if back {
                for &b in best.iter().rev() {
                    layout.swap(b);
                    raw.push(Step::Swap(b));
                }
            }
        }
        fuse(raw, n, fuse_buffers, plan);
        plan.home_from = plan.steps.len();
        let steps = &mut plan.steps;
        layout.sort_home_with(|b| steps.push(Step::Swap(b)));
    }
}

/// The multi-qubit gates that follow a far gate, as the look-ahead sees them.
struct Ahead<'a> {
    instructions: &'a [crate::Instruction],
    /// Instruction indices, in run order.
    gates: &'a [usize],
    /// How many of them count.
    window: usize,
}

/// The cheapest way to route a far gate on `sites` given the gates that follow: writes the
/// route's swaps into `best` and returns its window start, the argument on each window site,
/// and whether to swap back after the gate. `layout` is used to score candidates and left as
/// it was; `candidate` is working space.
fn choose(
    layout: &mut Layout,
    sites: &[usize],
    ahead: &Ahead<'_>,
    candidate: &mut Vec<usize>,
    best: &mut Vec<usize>,
) -> ((usize, ArgAt), bool) {
    let ahead_end = ahead.gates.len() <= ahead.window;
    let gates = &ahead.gates[..ahead.gates.len().min(ahead.window)];
    let future = |l: &Layout| -> usize {
        let cost: usize = gates
            .iter()
            .map(|&i| l.gather_cost(ahead.instructions[i].qubits()))
            .sum();
        cost + if ahead_end { l.inversions() } else { 0 }
    };
    let k = sites.len();
    let home = future(layout);
    // Swapping back: the cheapest gathering, twice (the middle anchor first, as
    // `Routing::SwapBack` routes, on ties).
    let anchors = || std::iter::once(k / 2).chain((0..k).filter(move |&a| a != k / 2));
    let mut route = route_into(sites, k / 2, best);
    for a in anchors().skip(1) {
        let r = route_into(sites, a, candidate);
        if candidate.len() < best.len() {
            std::mem::swap(candidate, best);
            route = r;
        }
    }
    let mut best_cost = 2 * best.len() + home;
    let mut back = true;
    // Leaving the qubits gathered: for two qubits `d` sites apart, every meeting window
    // between them costs the same `d - 1` swaps (at most 64 of them tried, evenly spaced);
    // for more qubits, each choice of the one that stays. Each is scored on the layout, its
    // swaps made and then undone (a swap is its own inverse).
    let mut consider = |r: (usize, ArgAt), swaps: &mut Vec<usize>, best: &mut Vec<usize>| {
        for &b in swaps.iter() {
            layout.swap(b);
        }
        let cost = swaps.len() + future(layout);
        for &b in swaps.iter().rev() {
            layout.swap(b);
        }
        if cost < best_cost {
            best_cost = cost;
            std::mem::swap(swaps, best);
            route = r;
            back = false;
        }
    };
    if k == 2 {
        let (lo, hi) = (sites[0].min(sites[1]), sites[0].max(sites[1]));
        let span = hi - lo;
        let tries = span.min(64);
        for t in 0..tries {
            let start = hi - 1 - t * (span - 1) / (tries - 1).max(1);
            let arg_at = meet_into(sites, start, candidate);
            consider((start, arg_at), candidate, best);
        }
    } else {
        for a in anchors() {
            let r = route_into(sites, a, candidate);
            consider(r, candidate, best);
        }
    }
    (route, back)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(layout: &mut Layout, swaps: &[usize]) {
        for &b in swaps {
            layout.swap(b);
        }
    }

    #[test]
    fn route_gathers_around_the_anchor() {
        let sites = [7, 1, 4];
        for (anchor, swaps) in [(0, 6), (1, 4), (2, 6)] {
            let r = route(&sites, anchor);
            let mut l = Layout::identity(10);
            apply(&mut l, &r.swaps);
            for (j, &arg) in r.arg_at.iter().enumerate() {
                assert_eq!(l.site(sites[arg]), r.start + j, "anchor {anchor}");
            }
            assert_eq!(r.swaps.len(), swaps, "anchor {anchor}");
        }
        // The middle anchor needs the fewest: the sites between not holding a gate qubit.
        assert_eq!(Layout::identity(10).gather_cost(&sites), 4);
    }

    /// Replays a plan on a layout: every gate's qubits sit on its window in argument order,
    /// every instruction appears once in order, and the plan ends with every qubit home.
    fn check_plan(circuit: &Circuit, order: &[usize], plan: &Plan) {
        let n = circuit.n_qubits();
        let instructions = circuit.instructions();
        let mut layout = Layout::identity(n);
        let mut seen = Vec::new();
        let mut check = |layout: &Layout, inst: usize, start: usize, arg_at: &[usize]| {
            let qubits = instructions[inst].qubits();
            for (j, &arg) in arg_at.iter().enumerate() {
                assert_eq!(layout.site(qubits[arg]), start + j);
            }
            seen.push(inst);
        };
        for (i, step) in plan.steps.iter().enumerate() {
            if i >= plan.home_from {
                assert!(matches!(step, Step::Swap(_)), "only swaps sort home");
            }
            match step {
                Step::Swap(b) => layout.swap(*b),
                Step::Gate {
                    inst,
                    start,
                    arg_at,
                } => check(&layout, *inst, *start, arg_at),
                Step::Fused { start, parts } => {
                    for part in plan.parts(*parts) {
                        match part {
                            Part::Swap => layout.swap(*start),
                            Part::One { inst, offset } => {
                                check(&layout, *inst, start + offset, &[0])
                            }
                            Part::Two { inst, arg_at } => check(&layout, *inst, *start, arg_at),
                        }
                    }
                }
            }
        }
        // Every instruction once, and on every qubit in the order given.
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        let mut expected = order.to_vec();
        expected.sort_unstable();
        assert_eq!(sorted, expected);
        let on = |q: usize, list: &[usize]| -> Vec<usize> {
            list.iter()
                .copied()
                .filter(|&i| instructions[i].qubits().contains(&q))
                .collect()
        };
        for q in 0..n {
            assert_eq!(on(q, &seen), on(q, order), "qubit {q}");
        }
        assert!(layout.is_identity());
    }

    /// `gates` CX on pairs at distance >= n / 4, with one-qubit gates between, from a seed.
    fn far_pairs(n: usize, gates: usize, mut seed: u64) -> Circuit {
        let mut next = move |m: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % m as u64) as usize
        };
        let mut c = Circuit::new(n).unwrap();
        for _ in 0..gates {
            let a = next(n);
            let b = loop {
                let b = next(n);
                if b.abs_diff(a) >= (n / 4).max(1) {
                    break b;
                }
            };
            c.cx(a, b).unwrap();
            c.h(next(n)).unwrap();
            if next(4) == 0 {
                let mut t: Vec<usize> = (0..n).collect();
                let q0 = t.remove(next(t.len()));
                let q1 = t.remove(next(t.len()));
                let q2 = t.remove(next(t.len()));
                c.ccx(q0, q1, q2).unwrap();
            }
        }
        c
    }

    /// A CX brick with one long-range CX per layer.
    fn long_range_brick(n: usize, layers: usize) -> Circuit {
        let mut c = Circuit::new(n).unwrap();
        for layer in 0..layers {
            for start in [0, 1] {
                for q in (start..n - 1).step_by(2) {
                    c.cx(q, q + 1).unwrap();
                }
            }
            c.cx((7 * layer) % (n / 4), n - 1 - (3 * layer) % (n / 4))
                .unwrap();
        }
        c
    }

    #[test]
    fn plans_route_every_gate_and_end_home() {
        for seed in 0..20 {
            let c = far_pairs(3 + seed as usize, 40, seed);
            for routing in [Routing::Lookahead, Routing::SwapBack] {
                let order = c.sweep_order();
                check_plan(&c, &order, &Plan::new(&c, &order, routing));
            }
        }
        let c = long_range_brick(30, 6);
        let order: Vec<usize> = (0..c.len()).collect();
        check_plan(&c, &order, &Plan::new(&c, &order, Routing::Lookahead));
    }

    /// Buffers kept from planning other circuits (larger, smaller, other routing) give the
    /// plan and sweep order that fresh ones give.
    #[test]
    fn plans_in_reused_buffers_match_fresh_ones() {
        let circuits = [
            far_pairs(20, 200, 3),
            far_pairs(4, 10, 5),
            long_range_brick(30, 4),
            far_pairs(9, 60, 11),
            far_pairs(3, 5, 1),
        ];
        let mut buffers = PlanBuffers::default();
        for routing in [Routing::Lookahead, Routing::SwapBack] {
            for c in &circuits {
                buffers.plan(c, routing);
                let order = c.sweep_order();
                assert_eq!(buffers.order, order);
                let fresh = Plan::new(c, &order, routing);
                assert_eq!(buffers.plan, fresh);
                check_plan(c, &order, &buffers.plan);
            }
        }
    }

    #[test]
    fn lookahead_leaves_random_pairs_and_returns_brick_qubits() {
        let c = far_pairs(20, 400, 7);
        let order = c.sweep_order();
        let lazy = Plan::new(&c, &order, Routing::Lookahead).swaps();
        let back = Plan::new(&c, &order, Routing::SwapBack).swaps();
        assert!(
            2 * lazy < back,
            "random pairs: {lazy} swaps vs {back} swapping back"
        );
        let c = long_range_brick(50, 10);
        let order = c.sweep_order();
        let lazy = Plan::new(&c, &order, Routing::Lookahead).swaps();
        let back = Plan::new(&c, &order, Routing::SwapBack).swaps();
        assert!(
            lazy <= back,
            "long-range brick: {lazy} swaps vs {back} swapping back"
        );
    }

    #[test]
    fn inversions_count_the_swaps_home() {
        let mut l = Layout::identity(9);
        apply(&mut l, &[0, 1, 2, 3, 6, 5, 4, 0, 7, 1]);
        let inv = l.inversions();
        let swaps = l.sort_home();
        assert_eq!(swaps.len(), inv);
        assert!(l.is_identity());
        assert_eq!(Layout::identity(5).clone().sort_home(), Vec::<usize>::new());
    }
}
