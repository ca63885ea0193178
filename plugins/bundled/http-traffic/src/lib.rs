//! `http-traffic`, a bundled traffic plugin: sets and reads the weights of
//! target groups through a router's HTTP API. The router contract is
//! specified in `plugins/README.md` ("The router API of `http-traffic`"):
//! `GET {router_url}/weights` reads the weights in force and
//! `PUT {router_url}/weights` replaces them, both with the body
//! `{"weights": [{"group": "blue", "percent": 90}, …]}`.
//!
//! Parameters: `router_url` (required, the API's base URL, which the grant
//! must allow) and `timeout_ms` (default `2000`). A granted secret
//! `router_token` is sent as `Authorization: Bearer …`. Weights are checked
//! before they are sent (non-empty, no group twice, adding up to 100), and
//! when the router answers a `PUT` with the weights in force they must be
//! the ones asked for.

use greenlight_plugin_sdk::{
    Error, GroupWeight, Params, ReleaseContext, Shift, Traffic, config, http, log,
};
use serde::{Deserialize, Serialize};

struct HttpTraffic;

/// The body of both endpoints.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Weights {
    weights: Vec<Weight>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
struct Weight {
    group: String,
    percent: u8,
}

/// Refuses weights a router must never be sent.
fn validate(weights: &[Weight]) -> Result<(), String> {
    if weights.is_empty() {
        return Err("no weights given".into());
    }
    let mut groups: Vec<&str> = weights.iter().map(|w| w.group.as_str()).collect();
    groups.sort_unstable();
    if let Some(pair) = groups.windows(2).find(|p| p[0] == p[1]) {
        return Err(format!("group `{}` is given twice", pair[0]));
    }
    if let Some(w) = weights.iter().find(|w| w.group.is_empty()) {
        return Err(format!("a weight of {}% has no group", w.percent));
    }
    let total: u32 = weights.iter().map(|w| u32::from(w.percent)).sum();
    if total != 100 {
        return Err(format!("the weights add up to {total}, not 100"));
    }
    Ok(())
}

/// Whether two weight lists say the same, in any order.
fn same(a: &[Weight], b: &[Weight]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
}

fn describe(weights: &[Weight]) -> String {
    let parts: Vec<String> = weights
        .iter()
        .map(|w| format!("{} {}%", w.group, w.percent))
        .collect();
    parts.join(", ")
}

struct Router {
    url: String,
    timeout_ms: u64,
    token: Option<String>,
}

impl Router {
    fn from_params(ctx: &ReleaseContext) -> Result<Router, Error> {
        let base: String = ctx.required("router_url")?;
        Ok(Router {
            url: http::join(&base, "/weights"),
            timeout_ms: ctx.param_or("timeout_ms", 2_000)?,
            token: config::secret("router_token"),
        })
    }
}

impl Traffic for HttpTraffic {
    fn set_weights(ctx: &ReleaseContext, weights: &[GroupWeight]) -> Result<Shift, Error> {
        let router = Router::from_params(ctx)?;
        let asked: Vec<Weight> = weights
            .iter()
            .map(|w| Weight {
                group: w.group.clone(),
                percent: w.percent,
            })
            .collect();
        validate(&asked).map_err(Error::new)?;
        let response = http::Request::put(&router.url)
            .bearer(router.token.as_deref())
            .timeout_ms(router.timeout_ms)
            .json(&Weights {
                weights: asked.clone(),
            })
            .send()?
            .error_for_status()?;
        if !response.body.is_empty() {
            let applied: Weights = response.json()?;
            if !same(&applied.weights, &asked) {
                return Err(Error::retryable(format!(
                    "the router applied {} instead of {}",
                    describe(&applied.weights),
                    describe(&asked)
                )));
            }
        }
        log::info(
            "Weights set.",
            &[("weights", &describe(&asked)), ("release", &ctx.release_id)],
        );
        Ok(Shift::Done)
    }

    fn current_weights(ctx: &ReleaseContext) -> Result<Vec<GroupWeight>, Error> {
        let router = Router::from_params(ctx)?;
        let current: Weights = http::Request::get(&router.url)
            .bearer(router.token.as_deref())
            .timeout_ms(router.timeout_ms)
            .send()?
            .error_for_status()?
            .json()?;
        Ok(current
            .weights
            .into_iter()
            .map(|w| GroupWeight::new(w.group, w.percent))
            .collect())
    }
}

greenlight_plugin_sdk::export_traffic!(HttpTraffic);

#[cfg(test)]
mod tests {
    use super::*;

    fn w(group: &str, percent: u8) -> Weight {
        Weight {
            group: group.into(),
            percent,
        }
    }

    #[test]
    fn weights_must_name_each_group_once_and_add_up_to_100() {
        assert_eq!(validate(&[w("blue", 90), w("green", 10)]), Ok(()));
        assert_eq!(validate(&[w("blue", 100)]), Ok(()));
        assert_eq!(validate(&[]), Err("no weights given".into()));
        assert_eq!(
            validate(&[w("blue", 50), w("blue", 50)]),
            Err("group `blue` is given twice".into())
        );
        assert_eq!(
            validate(&[w("blue", 90), w("green", 20)]),
            Err("the weights add up to 110, not 100".into())
        );
        assert_eq!(
            validate(&[w("", 100)]),
            Err("a weight of 100% has no group".into())
        );
    }

    #[test]
    fn the_order_of_weights_does_not_matter() {
        assert!(same(
            &[w("blue", 90), w("green", 10)],
            &[w("green", 10), w("blue", 90)]
        ));
        assert!(!same(&[w("blue", 90), w("green", 10)], &[w("blue", 100)]));
        assert_eq!(
            describe(&[w("blue", 90), w("green", 10)]),
            "blue 90%, green 10%"
        );
    }
}
