//! Per-user simulation: a user's profile, orders, order items, inventory, browsing and purchase
//! sessions, and (signal profile) the ground truth of every Complete order.
//!
//! Each user draws from its own ChaCha8 stream seeded by `(seed, user_id)`, so a range of users can
//! be simulated on any thread and the concatenated result is the same however users are split.
//! Rows are kept compact here (indices instead of strings, ids relative to the chunk); turning them
//! into Arrow columns is `build`'s job.
//!
//! Times are scheduled in whole seconds and turned into microsecond timestamps only when a row is
//! emitted ([`stamp`]), which adds a sub-second part to ~10% of them. Every ordering constraint is
//! kept with at least a one-second margin, so the sub-second part can never reorder two events.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1, Gamma, Poisson};

use crate::catalog::{Catalog, Dept};
use crate::names;
use crate::reference::Reference;
use crate::signal::{self, AnchorFeatures};
use crate::timefmt::{MICROS_PER_SEC, SECS_PER_DAY};
use crate::{GenConfig, Profile};

const DAY: i64 = SECS_PER_DAY;
const HOUR: i64 = 3600;
const WINDOW_DAYS: i64 = 60;

/// Odd multiplier spreading user ids over the seed space before ChaCha's own seed expansion.
const USER_SEED_MULT: u64 = 0x9E37_79B9_7F4A_7C15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gender {
    M,
    F,
}

impl Gender {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Gender::M => "M",
            Gender::F => "F",
        }
    }

    fn dept(self) -> Dept {
        match self {
            Gender::M => Dept::Men,
            Gender::F => Dept::Women,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Complete,
    Cancelled,
    Returned,
    Processing,
    Shipped,
}

impl Status {
    const ALL: [Status; 5] = [
        Status::Complete,
        Status::Cancelled,
        Status::Returned,
        Status::Processing,
        Status::Shipped,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Status::Complete => "Complete",
            Status::Cancelled => "Cancelled",
            Status::Returned => "Returned",
            Status::Processing => "Processing",
            Status::Shipped => "Shipped",
        }
    }
}

/// TheLook's order status shares (in `Status::ALL` order).
const THELOOK_STATUS_W: [f64; 5] = [0.25, 0.15, 0.10, 0.20, 0.30];
/// Statuses of signal-profile orders that are not forced repurchases. Complete is slightly below
/// TheLook's share, so after the forced Complete repurchases are added the overall shares stay
/// near TheLook's.
const SIGNAL_STATUS_W: [f64; 5] = [0.22, 0.16, 0.12, 0.18, 0.32];
/// Chance that a user stops ordering after a non-Complete order, and after a Complete order that
/// is not repurchased. Set so the signal profile has about as many orders per user as TheLook.
const STOP_AFTER_OTHER: f64 = 0.5;
const STOP_AFTER_NO_REPURCHASE: f64 = 0.55;
const THELOOK_ORDERS_W: [f64; 5] = [0.2, 0.5, 0.2, 0.05, 0.05];
const ITEMS_W: [f64; 4] = [0.7, 0.2, 0.05, 0.05];

pub(crate) const USER_TRAFFIC: [&str; 5] = ["Search", "Organic", "Facebook", "Email", "Display"];
const USER_TRAFFIC_W: [f64; 5] = [0.70, 0.15, 0.06, 0.05, 0.04];
pub(crate) const EVENT_TRAFFIC: [&str; 5] = ["Email", "Adwords", "YouTube", "Facebook", "Organic"];
const EVENT_TRAFFIC_W: [f64; 5] = [0.45, 0.30, 0.10, 0.10, 0.05];
pub(crate) const BROWSERS: [&str; 5] = ["Chrome", "Safari", "Firefox", "IE", "Other"];
const BROWSERS_W: [f64; 5] = [0.5, 0.2, 0.2, 0.05, 0.05];
/// Length of an anonymous session (1..=5 events of home, department, product, cart, cancel);
/// mean 3.1, which puts the thelook profile near TheLook's 2.4M events per 100k users.
const ANON_LEN_W: [f64; 5] = [0.10, 0.25, 0.30, 0.15, 0.20];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    Home,
    Department,
    Product,
    Cart,
    Purchase,
    Cancel,
}

impl EventKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            EventKind::Home => "home",
            EventKind::Department => "department",
            EventKind::Product => "product",
            EventKind::Cart => "cart",
            EventKind::Purchase => "purchase",
            EventKind::Cancel => "cancel",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct UserRow {
    pub id: i64,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub age: u8,
    pub gender: Gender,
    pub location: u32,
    pub latitude: f64,
    pub longitude: f64,
    pub street_number: u32,
    pub street: &'static str,
    pub street_suffix: &'static str,
    pub traffic: u8,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct OrderRow {
    pub user_id: i64,
    pub status: Status,
    pub gender: Gender,
    pub created_at: i64,
    pub shipped_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub returned_at: Option<i64>,
    pub num_of_item: u8,
}

/// Indices are relative to the chunk.
#[derive(Debug, Clone)]
pub(crate) struct ItemRow {
    pub order: u32,
    pub product: u32,
    pub inventory: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct InventoryRow {
    pub product: u32,
    pub created_at: i64,
    pub sold_at: Option<i64>,
}

/// What all events of one session share.
#[derive(Debug, Clone)]
pub(crate) struct SessionRow {
    pub id: u128,
    pub user_id: Option<i64>,
    pub ip: u32,
    pub location: u32,
    pub browser: u8,
    pub traffic: u8,
}

#[derive(Debug, Clone)]
pub(crate) struct EventRow {
    pub session: u32,
    pub created_at: i64,
    /// Product shown by `department` (its department/category/brand) and `product` events.
    pub product: u32,
    pub sequence_number: u8,
    pub kind: EventKind,
}

#[derive(Debug, Clone)]
pub(crate) struct TruthRow {
    pub order: u32,
    pub user_id: i64,
    pub anchor_time: i64,
    pub p_true: f64,
    pub repurchased: bool,
}

/// Output of a contiguous range of users.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    pub users: Vec<UserRow>,
    pub orders: Vec<OrderRow>,
    pub items: Vec<ItemRow>,
    pub inventory: Vec<InventoryRow>,
    pub sessions: Vec<SessionRow>,
    pub events: Vec<EventRow>,
    pub truth: Vec<TruthRow>,
}

impl Chunk {
    /// Appends the `step`-th event (from 0) of a session's funnel.
    fn push_event(
        &mut self,
        session: u32,
        product: u32,
        step: usize,
        kind: EventKind,
        created_at: i64,
    ) {
        self.events.push(EventRow {
            session,
            created_at,
            product,
            sequence_number: step as u8 + 1,
            kind,
        });
    }
}

pub(crate) struct Simulator<'a> {
    profile: Profile,
    seed: u64,
    catalog: &'a Catalog,
    reference: &'a Reference,
    /// First second of `start_date`.
    start_s: i64,
    /// Last whole second of `end_date`: no timestamp may pass it.
    last_s: i64,
    gamma: Option<Gamma<f64>>,
}

/// What the order emitter needs to know about the user.
struct UserCtx {
    id: i64,
    gender: Gender,
    location: u32,
}

impl<'a> Simulator<'a> {
    pub(crate) fn new(cfg: &GenConfig, catalog: &'a Catalog, reference: &'a Reference) -> Self {
        let start_s = cfg
            .start_date
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp())
            .unwrap_or(0);
        let end_s = cfg
            .end_date
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp())
            .unwrap_or(0);
        Simulator {
            profile: cfg.profile,
            seed: cfg.seed,
            catalog,
            reference,
            start_s,
            last_s: end_s + DAY - 1,
            gamma: Gamma::new(1.5, 1.0).ok(),
        }
    }

    /// Simulates users `first..=last`.
    pub(crate) fn simulate(&self, first: i64, last: i64) -> Chunk {
        let n = (last - first + 1).max(0) as usize;
        // Capacities from the expected rows per user avoid regrowing the big vectors.
        let mut out = Chunk {
            users: Vec::with_capacity(n),
            orders: Vec::with_capacity(n * 3 / 2),
            items: Vec::with_capacity(n * 2),
            inventory: Vec::with_capacity(n * 6),
            sessions: Vec::with_capacity(n * 8),
            events: Vec::with_capacity(n * 26),
            truth: Vec::new(),
        };
        for uid in first..=last {
            self.simulate_user(uid, &mut out);
        }
        out
    }

    fn simulate_user(&self, uid: i64, out: &mut Chunk) {
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.seed ^ (uid as u64).wrapping_mul(USER_SEED_MULT));
        let gender = if rng.random_bool(0.5) {
            Gender::M
        } else {
            Gender::F
        };
        let first_names = if gender == Gender::M {
            names::FIRST_MALE
        } else {
            names::FIRST_FEMALE
        };
        let location = self.reference.sample_location(&mut rng);
        let loc = &self.reference.locations[location as usize];
        let created_s = rng.random_range(self.start_s..=self.last_s);
        let traffic = pick(&mut rng, &USER_TRAFFIC_W) as u8;
        let user = UserRow {
            id: uid,
            first_name: first_names[rng.random_range(0..first_names.len())],
            last_name: names::LAST[rng.random_range(0..names::LAST.len())],
            age: rng.random_range(12..=70),
            gender,
            location,
            latitude: round6(loc.latitude + rng.random_range(-0.005..0.005)),
            longitude: round6(loc.longitude + rng.random_range(-0.005..0.005)),
            street_number: rng.random_range(1..10_000),
            street: names::STREETS[rng.random_range(0..names::STREETS.len())],
            street_suffix: names::STREET_SUFFIXES
                [rng.random_range(0..names::STREET_SUFFIXES.len())],
            traffic,
            created_at: stamp(&mut rng, created_s),
        };
        let created_at = user.created_at;
        out.users.push(user);
        let ctx = UserCtx {
            id: uid,
            gender,
            location,
        };

        match self.profile {
            Profile::Thelook => self.thelook_orders(&mut rng, out, &ctx, created_s),
            Profile::Signal => self.signal_orders(
                &mut rng,
                out,
                &ctx,
                created_s,
                created_at,
                USER_TRAFFIC[traffic as usize],
            ),
        }

        let anonymous = match self.profile {
            Profile::Thelook => 5,
            Profile::Signal => 2,
        };
        for _ in 0..anonymous {
            self.anonymous_session(&mut rng, out, created_s);
        }
    }

    /// TheLook's own generator: a number of orders at independent uniform times, independent statuses.
    fn thelook_orders(
        &self,
        rng: &mut ChaCha8Rng,
        out: &mut Chunk,
        user: &UserCtx,
        created_s: i64,
    ) {
        let n = pick(rng, &THELOOK_ORDERS_W);
        let mut times = [0i64; 4];
        for t in times.iter_mut().take(n) {
            *t = rng.random_range(created_s..=self.last_s);
        }
        times[..n].sort_unstable();
        for &t in &times[..n] {
            let status = Status::ALL[pick(rng, &THELOOK_STATUS_W)];
            let (products, len) = self.draw_basket(rng, user.gender);
            self.emit_order(rng, out, user, status, t, &products[..len]);
        }
    }

    /// The learnable process: orders in time order, each Complete order's chance of a Complete
    /// follow-up within 60 days set by [`signal::logit`] on what was observable before it.
    fn signal_orders(
        &self,
        rng: &mut ChaCha8Rng,
        out: &mut Chunk,
        user: &UserCtx,
        created_s: i64,
        created_at: i64,
        traffic: &str,
    ) {
        const MAX_ORDERS: usize = 8;
        // Forced repurchases may exceed MAX_ORDERS so a "yes" draw is only ever cut short by the end
        // date; this bound just guarantees termination.
        const HARD_MAX_ORDERS: usize = 30;

        let browse_rate = self.gamma.as_ref().map(|g| g.sample(rng)).unwrap_or(1.0) * 1.5;
        let browse = Poisson::new(browse_rate).ok();
        if rng.random_bool(0.2) {
            return;
        }
        let first_order = out.orders.len();
        let first_truth = out.truth.len();
        let mut browse_starts: Vec<i64> = Vec::new();
        let mut t = created_s + HOUR + exp_secs(rng, 45.0);
        let mut prev_order_s = created_s;
        let mut forced = false;
        // A Complete order is only allowed strictly after this second (see the "no" branch).
        let mut no_complete_until = i64::MIN;

        loop {
            let n_orders = out.orders.len() - first_order;
            if t > self.last_s || n_orders >= HARD_MAX_ORDERS || (!forced && n_orders >= MAX_ORDERS)
            {
                break;
            }
            // Browsing before this order, never before the previous one: what was observable at an
            // earlier anchor must not change as the process goes on.
            let n_sessions = browse.as_ref().map(|p| p.sample(rng) as u64).unwrap_or(0);
            let lo = prev_order_s.max(created_s).max(t - 30 * DAY);
            for _ in 0..n_sessions {
                // A browsing session lasts under 10 minutes; it has to end before the order.
                if t - 600 > lo {
                    let start = rng.random_range(lo..t - 600);
                    self.browse_session(rng, out, user, start);
                    browse_starts.push(start);
                }
            }

            let status = if forced {
                Status::Complete
            } else {
                let s = Status::ALL[pick(rng, &SIGNAL_STATUS_W)];
                if s == Status::Complete && t <= no_complete_until {
                    Status::ALL[1 + pick(rng, &SIGNAL_STATUS_W[1..])]
                } else {
                    s
                }
            };
            let (products, len) = self.draw_basket(rng, user.gender);
            let products = &products[..len];
            let oi = self.emit_order(rng, out, user, status, t, products);
            let order_at = out.orders[oi as usize].created_at;

            if status == Status::Complete {
                let history = &out.orders[first_order..oi as usize];
                let main = products
                    .iter()
                    .copied()
                    .reduce(|a, b| {
                        if self.catalog.product(b).retail_price
                            > self.catalog.product(a).retail_price
                        {
                            b
                        } else {
                            a
                        }
                    })
                    .unwrap_or(products[0]);
                let features = AnchorFeatures {
                    n_prev_complete: history
                        .iter()
                        .filter(|o| o.status == Status::Complete)
                        .count() as u32,
                    n_prev_returned: history
                        .iter()
                        .filter(|o| {
                            o.status == Status::Returned
                                && o.returned_at.is_some_and(|r| r < order_at)
                        })
                        .count() as u32,
                    days_since_prev_complete: history
                        .iter()
                        .rev()
                        .find(|o| o.status == Status::Complete)
                        .map(|o| (order_at - o.created_at) as f64 / (DAY * MICROS_PER_SEC) as f64),
                    tenure_days: (order_at - created_at) as f64 / (DAY * MICROS_PER_SEC) as f64,
                    browse_sessions_14d: browse_starts
                        .iter()
                        .filter(|&&s| s >= t - 14 * DAY && s < t)
                        .count() as u32,
                    basket_value: products
                        .iter()
                        .map(|&p| self.catalog.product(p).retail_price)
                        .sum(),
                    main_category: self.catalog.category_of(main).name,
                    traffic_source: traffic,
                };
                let p_true = signal::sigmoid(signal::logit(&features));
                out.truth.push(TruthRow {
                    order: oi,
                    user_id: user.id,
                    anchor_time: order_at,
                    p_true,
                    repurchased: false,
                });
                prev_order_s = t;
                if rng.random::<f64>() < p_true {
                    forced = true;
                    t += rng.random_range(
                        signal::REPURCHASE_DELAY_MIN_S..=signal::REPURCHASE_DELAY_MAX_S,
                    );
                } else {
                    forced = false;
                    no_complete_until = t + WINDOW_DAYS * DAY;
                    if rng.random_bool(STOP_AFTER_NO_REPURCHASE) {
                        break;
                    }
                    t = if rng.random_bool(0.3) {
                        // A non-Complete order inside the window keeps the label from being "any
                        // order within 60 days".
                        t + rng.random_range(DAY..=55 * DAY)
                    } else {
                        no_complete_until + HOUR + exp_secs(rng, 150.0)
                    };
                }
            } else {
                forced = false;
                prev_order_s = t;
                if rng.random_bool(STOP_AFTER_OTHER) {
                    break;
                }
                t += HOUR + exp_secs(rng, 120.0);
            }
        }

        // The label is read off the generated orders, so it agrees with the data by construction,
        // including anchors whose repurchase would have fallen after the end date.
        let orders = &out.orders[first_order..];
        for row in &mut out.truth[first_truth..] {
            let window_end = row.anchor_time + WINDOW_DAYS * DAY * MICROS_PER_SEC;
            row.repurchased = orders.iter().any(|o| {
                o.status == Status::Complete
                    && o.created_at > row.anchor_time
                    && o.created_at <= window_end
            });
        }
    }

    fn draw_basket(&self, rng: &mut ChaCha8Rng, gender: Gender) -> ([u32; 4], usize) {
        let n = pick(rng, &ITEMS_W) + 1;
        let mut products = [0u32; 4];
        for p in products.iter_mut().take(n) {
            *p = self.catalog.draw(gender.dept(), rng);
        }
        (products, n)
    }

    /// Emits an order with its items, their inventory rows and one purchase session per item.
    /// Returns the order's index in the chunk.
    fn emit_order(
        &self,
        rng: &mut ChaCha8Rng,
        out: &mut Chunk,
        user: &UserCtx,
        status: Status,
        t: i64,
        products: &[u32],
    ) -> u32 {
        let created_at = stamp(rng, t);
        let (status, shipped_at, delivered_at, returned_at) =
            self.fulfil(rng, status, t, created_at);
        let oi = out.orders.len() as u32;
        out.orders.push(OrderRow {
            user_id: user.id,
            status,
            gender: user.gender,
            created_at,
            shipped_at,
            delivered_at,
            returned_at,
            num_of_item: products.len() as u8,
        });
        for &product in products {
            let inventory = out.inventory.len() as u32;
            let stocked = t - rng.random_range(HOUR..=90 * DAY);
            out.inventory.push(InventoryRow {
                product,
                created_at: stamp(rng, stocked),
                sold_at: Some(created_at),
            });
            // Unsold stock of the same product: 1.7 rows per sold one on average, TheLook's ratio.
            let unsold = if rng.random_bool(0.7) { 2 } else { 1 };
            for _ in 0..unsold {
                let s = rng.random_range(self.start_s..=self.last_s);
                out.inventory.push(InventoryRow {
                    product,
                    created_at: stamp(rng, s),
                    sold_at: None,
                });
            }
            out.items.push(ItemRow {
                order: oi,
                product,
                inventory,
            });
            self.purchase_session(rng, out, user, t, product);
        }
        oi
    }

    /// Shipping, delivery and return times. The thelook profile downgrades a status whose next
    /// step would fall after the end date, as TheLook does; the signal profile instead clamps the
    /// times to the end, because changing a status would change which orders are anchors and labels.
    fn fulfil(
        &self,
        rng: &mut ChaCha8Rng,
        status: Status,
        t: i64,
        created_at: i64,
    ) -> (Status, Option<i64>, Option<i64>, Option<i64>) {
        let ships = matches!(
            status,
            Status::Shipped | Status::Complete | Status::Returned
        );
        if !ships {
            return (status, None, None, None);
        }
        let delivers = matches!(status, Status::Complete | Status::Returned);
        let returns = status == Status::Returned;
        let ship_s = t + rng.random_range(60..=3 * DAY);
        let deliver_s = ship_s + rng.random_range(60..=5 * DAY);
        let return_s = deliver_s + rng.random_range(60..=3 * DAY);
        match self.profile {
            Profile::Signal => {
                let shipped = stamp(rng, ship_s.min(self.last_s)).max(created_at);
                let delivered =
                    delivers.then(|| stamp(rng, deliver_s.min(self.last_s)).max(shipped));
                let returned = match (returns, delivered) {
                    (true, Some(d)) => Some(stamp(rng, return_s.min(self.last_s)).max(d)),
                    _ => None,
                };
                (status, Some(shipped), delivered, returned)
            }
            Profile::Thelook => {
                if ship_s > self.last_s {
                    return (Status::Processing, None, None, None);
                }
                let shipped = stamp(rng, ship_s);
                if !delivers || deliver_s > self.last_s {
                    return (Status::Shipped, Some(shipped), None, None);
                }
                let delivered = stamp(rng, deliver_s);
                if !returns || return_s > self.last_s {
                    return (Status::Complete, Some(shipped), Some(delivered), None);
                }
                (
                    Status::Returned,
                    Some(shipped),
                    Some(delivered),
                    Some(stamp(rng, return_s)),
                )
            }
        }
    }

    fn new_session(
        &self,
        rng: &mut ChaCha8Rng,
        out: &mut Chunk,
        user_id: Option<i64>,
        location: u32,
    ) -> u32 {
        // UUID v4 layout: version nibble 4, variant bits 10.
        let raw: u128 = rng.random();
        let id = (raw & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
        let ip = (rng.random_range(1u32..=223) << 24) | rng.random_range(0..1u32 << 24);
        let idx = out.sessions.len() as u32;
        out.sessions.push(SessionRow {
            id,
            user_id,
            ip,
            location,
            browser: pick(rng, &BROWSERS_W) as u8,
            traffic: pick(rng, &EVENT_TRAFFIC_W) as u8,
        });
        idx
    }

    /// home → department → product → cart → purchase, the purchase a few seconds before the order.
    fn purchase_session(
        &self,
        rng: &mut ChaCha8Rng,
        out: &mut Chunk,
        user: &UserCtx,
        t: i64,
        product: u32,
    ) {
        let purchase = t - rng.random_range(2..=30);
        let cart = purchase - rng.random_range(5..=120);
        let viewed = cart - rng.random_range(10..=300);
        let department = viewed - rng.random_range(5..=120);
        let home = department - rng.random_range(5..=60);
        let session = self.new_session(rng, out, Some(user.id), user.location);
        let steps = [
            (EventKind::Home, home),
            (EventKind::Department, department),
            (EventKind::Product, viewed),
            (EventKind::Cart, cart),
            (EventKind::Purchase, purchase),
        ];
        for (i, (kind, s)) in steps.into_iter().enumerate() {
            let created_at = stamp(rng, s);
            out.push_event(session, product, i, kind, created_at);
        }
    }

    /// A signed-in browsing session without a purchase (signal profile): home → department →
    /// product, then cart with probability 0.4. Lasts under 10 minutes from `start`.
    fn browse_session(&self, rng: &mut ChaCha8Rng, out: &mut Chunk, user: &UserCtx, start: i64) {
        let product = self.catalog.draw(user.gender.dept(), rng);
        let len = if rng.random_bool(0.4) { 4 } else { 3 };
        let session = self.new_session(rng, out, Some(user.id), user.location);
        self.session_events(rng, out, session, start, product, &SESSION_KINDS[..len]);
    }

    /// A visitor who is not signed in: no user id, a random location, ends in `cancel` when it
    /// reaches the cart stage's end (the only place `cancel` occurs).
    fn anonymous_session(&self, rng: &mut ChaCha8Rng, out: &mut Chunk, user_created_s: i64) {
        let hi = self.last_s - 1200;
        let start = rng.random_range(user_created_s.min(hi)..=hi);
        let len = pick(rng, &ANON_LEN_W) + 1;
        let dept = if rng.random_bool(0.5) {
            Dept::Men
        } else {
            Dept::Women
        };
        let product = self.catalog.draw(dept, rng);
        let location = self.reference.sample_location(rng);
        let session = self.new_session(rng, out, None, location);
        self.session_events(rng, out, session, start, product, &SESSION_KINDS[..len]);
    }

    fn session_events(
        &self,
        rng: &mut ChaCha8Rng,
        out: &mut Chunk,
        session: u32,
        start: i64,
        product: u32,
        kinds: &[EventKind],
    ) {
        let mut s = start;
        for (i, &kind) in kinds.iter().enumerate() {
            if i > 0 {
                s += rng.random_range(5..=180);
            }
            let created_at = stamp(rng, s);
            out.push_event(session, product, i, kind, created_at);
        }
    }
}

const SESSION_KINDS: [EventKind; 5] = [
    EventKind::Home,
    EventKind::Department,
    EventKind::Product,
    EventKind::Cart,
    EventKind::Cancel,
];

/// Microsecond timestamp of a whole second; one in ten gets a sub-second part so both of
/// BigQuery's export formats occur.
fn stamp(rng: &mut ChaCha8Rng, secs: i64) -> i64 {
    let base = secs * MICROS_PER_SEC;
    if rng.random_bool(0.1) {
        base + rng.random_range(1..MICROS_PER_SEC)
    } else {
        base
    }
}

fn exp_secs(rng: &mut ChaCha8Rng, mean_days: f64) -> i64 {
    let e: f64 = Exp1.sample(rng);
    (e * mean_days * DAY as f64) as i64
}

/// Index drawn from weights that sum to about one (the last index absorbs rounding).
fn pick(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
