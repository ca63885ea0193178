//! A plugin version's pre-linked instance, typed by its world and its
//! interface version, and the one call into it. Both versions' worlds have
//! the same exports with types of their own, so each version's enum and
//! dispatch are written once, in [`worlds!`], and expanded per version.

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::inspect::InterfaceVersion;
use super::state::InvocationState;
use crate::domain::plugin::{Call, Output, PluginKind};

/// One interface version's six worlds: an enum of their pre-linked
/// instances, its constructor by kind, and the dispatch of a call.
macro_rules! worlds {
    (
        $name:ident, $convert:path,
        precheck: $precheck:ident . $precheck_fn:ident,
        deployer: $deployer:ident . $deployer_fn:ident,
        traffic: $traffic:ident . $traffic_fn:ident,
        check: $check:ident . $check_fn:ident,
        policy: $policy:ident . $policy_fn:ident,
        notifier: $notifier:ident . $notifier_fn:ident $(,)?
    ) => {
        /// The pre-linked instance of a plugin of one interface version.
        #[derive(Clone)]
        pub(super) enum $name {
            Precheck(super::bindings::$precheck::PrecheckPluginPre<InvocationState>),
            Deployer(super::bindings::$deployer::DeployerPluginPre<InvocationState>),
            Traffic(super::bindings::$traffic::TrafficPluginPre<InvocationState>),
            Check(super::bindings::$check::CheckPluginPre<InvocationState>),
            Policy(super::bindings::$policy::RollbackPolicyPluginPre<InvocationState>),
            Notifier(super::bindings::$notifier::NotifierPluginPre<InvocationState>),
        }

        impl $name {
            fn new(kind: PluginKind, pre: InstancePre<InvocationState>) -> wasmtime::Result<Self> {
                use super::bindings::*;
                Ok(match kind {
                    PluginKind::Precheck => Self::Precheck($precheck::PrecheckPluginPre::new(pre)?),
                    PluginKind::Deployer => Self::Deployer($deployer::DeployerPluginPre::new(pre)?),
                    PluginKind::Traffic => Self::Traffic($traffic::TrafficPluginPre::new(pre)?),
                    PluginKind::Check => Self::Check($check::CheckPluginPre::new(pre)?),
                    PluginKind::RollbackPolicy => {
                        Self::Policy($policy::RollbackPolicyPluginPre::new(pre)?)
                    }
                    PluginKind::Notifier => Self::Notifier($notifier::NotifierPluginPre::new(pre)?),
                })
            }

            /// Instantiates the plugin in the store and calls the export
            /// the call names.
            async fn dispatch(
                &self,
                store: &mut Store<InvocationState>,
                call: Call,
            ) -> wasmtime::Result<Output> {
                use $convert as convert;
                Ok(match (self, call) {
                    (Self::Precheck(pre), Call::Precheck { ctx, artifacts }) => {
                        let p = pre.instantiate_async(&mut *store).await?;
                        let r = p
                            .$precheck_fn()
                            .call_run(
                                &mut *store,
                                &convert::context(&ctx),
                                &convert::artifacts(&artifacts),
                            )
                            .await?;
                        Output::Precheck(convert::precheck_result(r))
                    }
                    (
                        Self::Deployer(pre),
                        Call::Deploy {
                            ctx,
                            targets,
                            idempotency_key,
                        },
                    ) => {
                        let p = pre.instantiate_async(&mut *store).await?;
                        let r = p
                            .$deployer_fn()
                            .call_deploy(
                                &mut *store,
                                &convert::context(&ctx),
                                &convert::targets(&targets),
                                &idempotency_key,
                            )
                            .await?;
                        convert::work(r)
                    }
                    (
                        Self::Deployer(pre),
                        Call::Rollback {
                            ctx,
                            targets,
                            idempotency_key,
                        },
                    ) => {
                        let p = pre.instantiate_async(&mut *store).await?;
                        let r = p
                            .$deployer_fn()
                            .call_rollback(
                                &mut *store,
                                &convert::context(&ctx),
                                &convert::targets(&targets),
                                &idempotency_key,
                            )
                            .await?;
                        convert::work(r)
                    }
                    (Self::Traffic(pre), Call::SetWeights { ctx, weights }) => {
                        let p = pre.instantiate_async(&mut *store).await?;
                        let r = p
                            .$traffic_fn()
                            .call_set_weights(
                                &mut *store,
                                &convert::context(&ctx),
                                &convert::weights_to_wit(&weights),
                            )
                            .await?;
                        convert::shifted(r)
                    }
                    (Self::Traffic(pre), Call::CurrentWeights { ctx }) => {
                        let p = pre.instantiate_async(&mut *store).await?;
                        let r = p
                            .$traffic_fn()
                            .call_current_weights(&mut *store, &convert::context(&ctx))
                            .await?;
                        Output::Weights(convert::weights(r))
                    }
                    (Self::Check(pre), Call::Verify { ctx, targets }) => {
                        let p = pre.instantiate_async(&mut *store).await?;
                        let r = p
                            .$check_fn()
                            .call_verify(
                                &mut *store,
                                &convert::context(&ctx),
                                &convert::targets(&targets),
                            )
                            .await?;
                        Output::Verdict(convert::verdict(r))
                    }
                    (Self::Policy(pre), Call::Decide { ctx, observations }) => {
                        let p = pre.instantiate_async(&mut *store).await?;
                        let r = p
                            .$policy_fn()
                            .call_decide(
                                &mut *store,
                                &convert::context(&ctx),
                                &convert::observations(&observations),
                            )
                            .await?;
                        Output::Decision(convert::decision(r))
                    }
                    (Self::Notifier(pre), Call::Notify { ctx, event }) => {
                        let p = pre.instantiate_async(&mut *store).await?;
                        let r = p
                            .$notifier_fn()
                            .call_notify(
                                &mut *store,
                                &convert::context(&ctx),
                                &convert::event(&event),
                            )
                            .await?;
                        Output::Done(r.map_err(convert::fault))
                    }
                    // `invoke` checks the call's kind against the plugin's
                    // first.
                    (_, call) => {
                        wasmtime::bail!("`{}` does not match the plugin's kind", call.function())
                    }
                })
            }
        }
    };
}

worlds!(
    V1, super::convert::v1,
    precheck: precheck.greenlight_plugin0_1_0_precheck,
    deployer: deployer.greenlight_plugin0_1_0_deployer,
    traffic: traffic.greenlight_plugin0_1_0_traffic,
    check: check.greenlight_plugin0_1_0_check,
    policy: policy.greenlight_plugin0_1_0_rollback_policy,
    notifier: notifier.greenlight_plugin0_1_0_notifier,
);

worlds!(
    V2, super::convert::v2,
    precheck: precheck_v2.greenlight_plugin0_2_0_precheck,
    deployer: deployer_v2.greenlight_plugin0_2_0_deployer,
    traffic: traffic_v2.greenlight_plugin0_2_0_traffic,
    check: check_v2.greenlight_plugin0_2_0_check,
    policy: policy_v2.greenlight_plugin0_2_0_rollback_policy,
    notifier: notifier_v2.greenlight_plugin0_2_0_notifier,
);

/// A plugin version's pre-linked instance, typed by its world, of either
/// interface version.
#[derive(Clone)]
pub(super) enum KindPre {
    V1(V1),
    V2(V2),
}

impl KindPre {
    pub(super) fn new(
        kind: PluginKind,
        version: InterfaceVersion,
        pre: InstancePre<InvocationState>,
    ) -> wasmtime::Result<KindPre> {
        Ok(match version {
            InterfaceVersion::V0_1 => KindPre::V1(V1::new(kind, pre)?),
            InterfaceVersion::V0_2 => KindPre::V2(V2::new(kind, pre)?),
        })
    }

    /// Instantiates the plugin in the store and calls the export the call
    /// names.
    pub(super) async fn dispatch(
        &self,
        store: &mut Store<InvocationState>,
        call: Call,
    ) -> wasmtime::Result<Output> {
        match self {
            KindPre::V1(pre) => pre.dispatch(store, call).await,
            KindPre::V2(pre) => pre.dispatch(store, call).await,
        }
    }
}
