"""The machinery both cluster test tiers share: the cluster tier (`tests/cluster`: a control
plane with kwok's fake nodes) and the real-node tier (`tests/realnode`: the same control plane
beside a real kubelet) start the same upstream components the same way.

- `pki`: certificate authorities, serving and client certificates, kubeconfigs;
- `processes`: free ports, the environment and death signal of a component process, log tails;
- `https`: the JSON-over-HTTPS client the fixtures talk to the API server with, health checks;
- `commands`: each component's command line and the objects that register an aggregated API.

Neither tier imports the other's private modules; both import these.
"""
