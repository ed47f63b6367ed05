//! `--mix`: how a room's clients are shared between the doors, such as `nc=50,irc=50`. The
//! shares are weights, and clients are dealt out interleaved (client `i` goes to the door
//! furthest behind its share), so the senders, the probe and the stalled clients are spread over
//! the doors too, and the counts are exact whenever the room's size allows.

use std::fmt;
use std::str::FromStr;

use crate::door::Door;

/// Doors and their weights, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix(Vec<(Door, u64)>);

impl Mix {
    /// Every client through one door.
    pub fn only(door: Door) -> Mix {
        Mix(vec![(door, 1)])
    }

    /// The doors with a share, in the order given.
    pub fn doors(&self) -> impl Iterator<Item = Door> + '_ {
        self.0.iter().map(|(door, _)| *door)
    }

    /// The door of each of `total` clients, interleaved by weight.
    pub fn assign(&self, total: usize) -> Vec<Door> {
        let sum: u64 = self.0.iter().map(|(_, weight)| weight).sum();
        let mut dealt = vec![0u64; self.0.len()];
        (1..=total as u64)
            .map(|upto| {
                // The door whose share of the first `upto` clients is furthest ahead of what it
                // got: weight * upto / sum - dealt, compared without division.
                let behind = |k: usize| i128::from(self.0[k].1 * upto) - i128::from(dealt[k] * sum);
                let k = (0..self.0.len())
                    .max_by_key(|&k| (behind(k), std::cmp::Reverse(k)))
                    .unwrap_or(0);
                dealt[k] += 1;
                self.0[k].0
            })
            .collect()
    }
}

impl FromStr for Mix {
    type Err = String;

    /// `nc=50,irc=50`, `nc=1,irc=1,web=1`, or a door alone (`irc`, weight 1).
    fn from_str(text: &str) -> Result<Mix, String> {
        let mut shares: Vec<(Door, u64)> = Vec::new();
        for part in text.split(',').map(str::trim) {
            let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
            let door: Door = name.trim().parse()?;
            let weight: u64 = weight
                .trim()
                .parse()
                .ok()
                .filter(|weight| (1..=1_000_000).contains(weight))
                .ok_or_else(|| format!("--mix {part}: a share is a whole number 1..1000000"))?;
            if shares.iter().any(|(d, _)| *d == door) {
                return Err(format!("--mix names {door} twice"));
            }
            shares.push((door, weight));
        }
        Ok(Mix(shares))
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(d, w)| format!("{d}={w}")).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(doors: &[Door], door: Door) -> usize {
        doors.iter().filter(|d| **d == door).count()
    }

    /// Halves alternate; thirds rotate; uneven shares come out exact.
    #[test]
    fn interleaved_and_exact() {
        let mix: Mix = "nc=50,irc=50".parse().unwrap();
        let doors = mix.assign(1000);
        assert_eq!(&doors[..4], [Door::Line, Door::Irc, Door::Line, Door::Irc]);
        assert_eq!(count(&doors, Door::Irc), 500);
        let mix: Mix = "nc=1,irc=1,web=1".parse().unwrap();
        assert_eq!(mix.assign(3), [Door::Line, Door::Irc, Door::Web]);
        let mix: Mix = "nc=3,web=1".parse().unwrap();
        let doors = mix.assign(1000);
        assert_eq!(count(&doors, Door::Web), 250);
        assert_eq!(count(&doors[..10], Door::Web), 2);
    }

    /// Bad mixes are refused with the reason.
    #[test]
    fn refused() {
        assert!("nc=0".parse::<Mix>().is_err());
        assert!("nc=1,nc=2".parse::<Mix>().is_err());
        assert!("telnet=1".parse::<Mix>().is_err());
        assert_eq!("web".parse::<Mix>(), Ok(Mix::only(Door::Web)));
        assert_eq!(Mix::only(Door::Line).assign(2), [Door::Line, Door::Line]);
    }
}
