// Package helm holds `make chart-check` for the Helm chart in
// deploy/helm/sluice: chart_test.go lints it with Helm's own linter,
// renders it with Helm's engine under several value sets, and validates
// every rendered manifest offline by decoding it strictly into its
// Kubernetes API type (k8s.io/api: an unknown or misspelt field fails),
// then checks what the API server's schema cannot: selectors that match
// their pods, ports and volumes that exist, and every flag passed to
// sluice exists in `sluice agent --help` and `sluice meta --help`.
// Helm and the API types are pinned in deploy/go.mod.
package helm
