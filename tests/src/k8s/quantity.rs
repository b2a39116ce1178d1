//! Kubernetes quantities (`500m`, `2`, `2560Mi`, `1G`, `1e3`), as resources, divisors and
//! emptyDir size limits write them.

use serde::{Deserialize, Deserializer};

/// A quantity as a manifest writes it: a string (`"500m"`, `2560Mi`) or a bare number (`2`),
/// kept as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity(pub String);

impl Quantity {
    /// The quantity as a number (`500m` is 0.5, `1Ki` is 1024).
    pub fn value(&self) -> Result<f64, String> {
        parse_quantity(&self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a quantity (a string or a number)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Binary (`Ki`..`Ei`) and decimal (`m`, `k`..`E`) suffixes; the two-letter ones first.
const SUFFIXES: [(&str, f64); 13] = [
    ("Ki", 1024.0),
    ("Mi", 1048576.0),
    ("Gi", 1073741824.0),
    ("Ti", 1099511627776.0),
    ("Pi", 1125899906842624.0),
    ("Ei", 1152921504606846976.0),
    ("m", 0.001),
    ("k", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
    ("P", 1e15),
    ("E", 1e18),
];

/// A Kubernetes quantity as a number: `500m`, `2`, `2560Mi`, `1G`, `1e3`.
pub fn parse_quantity(q: &str) -> Result<f64, String> {
    let (number, mult) = SUFFIXES
        .iter()
        .find_map(|(s, mult)| q.strip_suffix(s).map(|n| (n, *mult)))
        .unwrap_or((q, 1.0));
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(|n| n * mult)
        .ok_or_else(|| format!("not a quantity: {q:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_suffixes() {
        assert_eq!(parse_quantity("1Ki"), Ok(1024.0));
        assert_eq!(parse_quantity("2560Mi"), Ok(2560.0 * 1048576.0));
        assert_eq!(parse_quantity("4Gi"), Ok(4.0 * 1073741824.0));
        assert_eq!(parse_quantity("1Ti"), Ok(1099511627776.0));
        assert_eq!(parse_quantity("0.5Gi"), Ok(536870912.0));
    }

    #[test]
    fn decimal_suffixes_and_plain_numbers() {
        assert_eq!(parse_quantity("500m"), Ok(0.5));
        assert_eq!(parse_quantity("100m"), Ok(0.1));
        assert_eq!(parse_quantity("2"), Ok(2.0));
        assert_eq!(parse_quantity("1.5"), Ok(1.5));
        assert_eq!(parse_quantity("1k"), Ok(1000.0));
        assert_eq!(parse_quantity("1G"), Ok(1e9));
        assert_eq!(parse_quantity("3M"), Ok(3e6));
        assert_eq!(parse_quantity("1e3"), Ok(1000.0));
    }

    #[test]
    fn bad_input_is_an_error() {
        for bad in [
            "", "Mi", "abc", "12x", "1 Gi", "1.2.3", "--1", "inf", "NaN", "m",
        ] {
            assert!(parse_quantity(bad).is_err(), "{bad:?}");
        }
        assert!(
            parse_quantity("12x").expect_err("bad").contains("\"12x\""),
            "the error names the input"
        );
    }

    #[test]
    fn strings_and_numbers_deserialize() {
        let q: Vec<Quantity> = serde_norway::from_str("[\"2\", 2, 500m, 1Gi, 0.5]").expect("yaml");
        let values: Vec<f64> = q.iter().map(|q| q.value().expect("value")).collect();
        assert_eq!(values, [2.0, 2.0, 0.5, 1073741824.0, 0.5]);
        assert_eq!(q[1], Quantity("2".into()));
        assert!(serde_norway::from_str::<Quantity>("[1]").is_err());
    }
}
