//! Word lists for synthetic names, addresses, brands and product titles.
//!
//! They only need to look plausible and to exercise the same text shapes as TheLook (apostrophes,
//! commas and inch marks in product names, so CSV quoting is used by real rows).

pub(crate) const FIRST_MALE: &[&str] = &[
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas", "Charles", "Daniel",
    "Matthew", "Anthony", "Mark", "Steven", "Paul", "Andrew", "Joshua", "Kevin", "Brian", "George", "Timothy",
    "Ryan", "Jacob", "Gary", "Nicholas", "Eric", "Jonathan", "Justin", "Scott", "Brandon", "Benjamin", "Samuel",
    "Gregory", "Alexander", "Patrick", "Jack", "Dennis", "Tyler", "Aaron", "Jose", "Adam", "Nathan", "Henry",
    "Zachary", "Peter", "Kyle", "Noah", "Ethan", "Jeremy", "Christian", "Walter", "Keith", "Austin", "Roger",
    "Terry", "Sean", "Gerald", "Carl", "Dylan", "Harold", "Jordan", "Jesse", "Bryan", "Lawrence", "Arthur",
    "Gabriel", "Bruce", "Logan", "Billy", "Joe", "Alan", "Juan", "Elijah", "Willie", "Albert", "Wayne", "Randy",
    "Mason", "Vincent", "Liam", "Roy", "Bobby", "Caleb", "Bradley", "Russell", "Lucas",
];

pub(crate) const FIRST_FEMALE: &[&str] = &[
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen", "Lisa",
    "Nancy", "Betty", "Sandra", "Margaret", "Ashley", "Kimberly", "Emily", "Donna", "Michelle", "Carol", "Amanda",
    "Melissa", "Deborah", "Stephanie", "Dorothy", "Rebecca", "Sharon", "Laura", "Cynthia", "Amy", "Kathleen",
    "Angela", "Shirley", "Brenda", "Emma", "Anna", "Pamela", "Nicole", "Samantha", "Katherine", "Christine",
    "Helen", "Debra", "Rachel", "Carolyn", "Janet", "Maria", "Catherine", "Heather", "Diane", "Olivia", "Julie",
    "Joyce", "Victoria", "Ruth", "Virginia", "Lauren", "Kelly", "Christina", "Joan", "Evelyn", "Judith", "Andrea",
    "Hannah", "Megan", "Cheryl", "Jacqueline", "Martha", "Madison", "Teresa", "Gloria", "Sara", "Janice", "Ann",
    "Kathryn", "Abigail", "Sophia", "Frances", "Jean", "Alice", "Judy", "Isabella", "Julia", "Grace", "Amber",
    "Denise", "Danielle", "Marilyn", "Beverly", "Charlotte", "Natalie", "Theresa", "Diana", "Brittany", "Doris",
];

pub(crate) const LAST: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker",
    "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz",
    "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers",
    "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox",
    "Ward", "Richardson", "Watson", "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz",
    "Hughes", "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez",
];

pub(crate) const STREETS: &[&str] = &[
    "Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lake", "Hill", "Park", "Main", "Church", "Walnut",
    "Spring", "Sunset", "Highland", "Willow", "Chestnut", "River", "Meadow", "Forest", "Ridge", "Jackson",
    "Lincoln", "Madison", "Franklin", "Adams", "Center", "Mill", "Valley", "Johnson", "Cherry", "Dogwood",
    "Hickory", "Laurel", "Birch", "Sycamore", "Poplar", "Magnolia", "Lakeview", "Railroad",
];

pub(crate) const STREET_SUFFIXES: &[&str] =
    &["Street", "Avenue", "Road", "Lane", "Drive", "Court", "Boulevard", "Way", "Place", "Terrace"];

/// Brand names are prefix + suffix combinations plus a few hand-written ones, giving a fixed
/// list of ~110 names that does not depend on the seed.
const BRAND_PREFIXES: &[&str] = &["North", "Blue", "Stone", "Silver", "Urban", "Wild", "Red", "Iron", "Coast", "Pine", "Grey", "Bright"];
const BRAND_SUFFIXES: &[&str] = &["field", "wood", "line", " & Co.", "haven", "ridge", " Supply", "peak", "wear"];
const HAND_BRANDS: &[&str] = &["Kelly's Outfitters", "Maison Lune", "Rowan & Finch", "O'Hara Denim", "Atelier Nord"];

pub(crate) fn brand_names() -> Vec<String> {
    let mut out: Vec<String> = BRAND_PREFIXES
        .iter()
        .flat_map(|p| BRAND_SUFFIXES.iter().map(move |s| format!("{p}{s}")))
        .collect();
    out.extend(HAND_BRANDS.iter().map(|s| s.to_string()));
    out
}

pub(crate) const ADJECTIVES: &[&str] = &[
    "Classic", "Slim Fit", "Relaxed", "Vintage", "Essential", "Premium", "Lightweight", "Cotton", "Stretch",
    "Organic Cotton", "Wool Blend", "Everyday", "Performance", "Heritage", "Modern", "Soft", "Quilted", "Printed",
    "Striped", "Ribbed", "Men's", "Women's", "Signature", "Tailored", "Washed",
];

pub(crate) const COLORS: &[&str] = &[
    "Black", "Navy", "White", "Heather Grey", "Olive", "Burgundy", "Charcoal", "Khaki", "Indigo", "Blush",
];

/// A few singular-ish product nouns per category.
pub(crate) fn nouns(category: &str) -> &'static [&'static str] {
    match category {
        "Jeans" => &["Jean", "Slim Jean", "Bootcut Jean", "Straight Leg Jean", "Skinny Jean"],
        "Underwear" => &["Boxer Brief", "Trunk", "Brief", "Boxer"],
        "Tops & Tees" => &["Tee", "Crew Neck T-Shirt", "V-Neck Tee", "Polo", "Henley"],
        "Pants" => &["Chino Pant", "Cargo Pant", "Jogger", "Trouser"],
        "Sweaters" => &["Sweater", "Cardigan", "Pullover", "Turtleneck"],
        "Fashion Hoodies & Sweatshirts" => &["Hoodie", "Sweatshirt", "Zip Hoodie", "Crewneck Sweatshirt"],
        "Sleep & Lounge" => &["Pajama Set", "Lounge Pant", "Robe", "Sleep Shirt"],
        "Shorts" => &["Short", "Cargo Short", "9\" Short", "7\" Chino Short", "Board Short"],
        "Swim" => &["Swim Trunk", "Bikini Top", "One-Piece Swimsuit", "Rash Guard"],
        "Socks" => &["Crew Sock", "Ankle Sock", "Dress Sock", "Sock 3-Pack"],
        "Socks & Hosiery" => &["Tights", "Knee High Sock", "No-Show Sock", "Sheer Hosiery"],
        "Outerwear & Coats" => &["Parka", "Peacoat", "Down Jacket", "Rain Jacket", "Trench Coat"],
        "Accessories" => &["Belt", "Beanie", "Scarf", "Wallet", "Cap", "Sunglasses"],
        "Active" => &["Training Tee", "Running Short", "Track Jacket", "Sports Bra", "Yoga Pant"],
        "Suits & Sport Coats" => &["Suit Jacket", "Sport Coat", "Blazer", "Two-Piece Suit"],
        "Suits" => &["Pant Suit", "Skirt Suit", "Suit Jacket"],
        "Intimates" => &["Bra", "Bralette", "Panty", "Camisole", "Thong"],
        "Dresses" => &["Maxi Dress", "Midi Dress", "Wrap Dress", "Shift Dress", "Sundress"],
        "Maternity" => &["Maternity Top", "Maternity Jean", "Nursing Bra", "Maternity Dress"],
        "Plus" => &["Plus Size Top", "Plus Size Dress", "Plus Size Jean"],
        "Pants & Capris" => &["Capri", "Wide Leg Pant", "Cropped Pant", "Palazzo Pant"],
        "Leggings" => &["Legging", "High Waist Legging", "Capri Legging"],
        "Blazers & Jackets" => &["Blazer", "Denim Jacket", "Moto Jacket", "Bomber Jacket"],
        "Skirts" => &["Pencil Skirt", "Mini Skirt", "Pleated Skirt", "A-Line Skirt"],
        "Jumpsuits & Rompers" => &["Jumpsuit", "Romper", "Overall"],
        "Clothing Sets" => &["Two-Piece Set", "Co-ord Set", "Tracksuit Set"],
        _ => &["Item"],
    }
}

/// Lower-case alphanumerics only: how category and brand appear in TheLook's URIs.
pub(crate) fn slug(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}
