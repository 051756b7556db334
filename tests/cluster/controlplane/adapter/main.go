// Command metrics-adapter serves custom.metrics.k8s.io and external.metrics.k8s.io to the cluster
// test tier's API server, built on sigs.k8s.io/custom-metrics-apiserver:
//
//   - custom metrics (Object and Pods metrics of an HPA) come from that module's own test adapter
//     provider (test-adapter/provider): a test POSTs a value to
//     /write-metrics/namespaces/NS/RESOURCE/NAME/METRIC;
//   - external metrics come from a store of this file, because the upstream test provider serves
//     a fixed list of them: a test POSTs a value (a JSON quantity, e.g. "340") to
//     /write-external-metrics/namespaces/NS/METRIC?labels=k=v,... and every read of METRIC in NS
//     whose selector matches those labels returns it from then on.
//
// The write endpoint listens on --write-address (plain HTTP; give it 127.0.0.1:PORT), the
// aggregated API on --bind-address/--secure-port like any extension API server.
package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emicklei/go-restful/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-base/logs"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/external_metrics"

	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
	fakeprov "sigs.k8s.io/custom-metrics-apiserver/test-adapter/provider"
)

const externalWritePrefix = "/write-external-metrics/namespaces/"

type externalSeries struct {
	labels labels.Set
	value  resource.Quantity
}

// externalStore holds the external metric values the tests wrote, by namespace and name.
type externalStore struct {
	mu     sync.RWMutex
	series map[string]map[string][]externalSeries // namespace -> metric -> series
}

func (s *externalStore) GetExternalMetric(
	_ context.Context, namespace string, selector labels.Selector, info provider.ExternalMetricInfo,
) (*external_metrics.ExternalMetricValueList, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	items := []external_metrics.ExternalMetricValue{}
	for _, one := range s.series[namespace][info.Metric] {
		if selector.Matches(one.labels) {
			items = append(items, external_metrics.ExternalMetricValue{
				MetricName:   info.Metric,
				MetricLabels: one.labels,
				Timestamp:    metav1.Now(),
				Value:        one.value,
			})
		}
	}
	return &external_metrics.ExternalMetricValueList{Items: items}, nil
}

func (s *externalStore) ListAllExternalMetrics() []provider.ExternalMetricInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := map[string]bool{}
	for _, metrics := range s.series {
		for name := range metrics {
			names[name] = true
		}
	}
	infos := make([]provider.ExternalMetricInfo, 0, len(names))
	for name := range names {
		infos = append(infos, provider.ExternalMetricInfo{Metric: name})
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Metric < infos[j].Metric })
	return infos
}

// ServeHTTP stores one value: POST /write-external-metrics/namespaces/NS/METRIC?labels=...
func (s *externalStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST a JSON quantity", http.StatusMethodNotAllowed)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, externalWritePrefix), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		http.Error(w, "path must be "+externalWritePrefix+"NAMESPACE/METRIC", http.StatusNotFound)
		return
	}
	var value resource.Quantity
	if err := json.NewDecoder(r.Body).Decode(&value); err != nil {
		http.Error(w, "body must be a JSON quantity such as \"340\": "+err.Error(), http.StatusBadRequest)
		return
	}
	set := labels.Set{}
	if raw := r.URL.Query().Get("labels"); raw != "" {
		var err error
		if set, err = labels.ConvertSelectorToLabelsMap(raw); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	namespace, metric := parts[0], parts[1]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.series[namespace] == nil {
		s.series[namespace] = map[string][]externalSeries{}
	}
	kept := []externalSeries{{labels: set, value: value}}
	for _, old := range s.series[namespace][metric] {
		if !labels.Equals(old.labels, set) {
			kept = append(kept, old)
		}
	}
	s.series[namespace][metric] = kept
	w.WriteHeader(http.StatusOK)
}

func main() {
	logs.InitLogs()
	defer logs.FlushLogs()

	cmd := &basecmd.AdapterBase{Name: "kubeswarm-test-metrics-adapter"}
	writeAddress := cmd.Flags().String("write-address", "127.0.0.1:8080",
		"host:port of the plain-HTTP endpoint where tests write metric values")
	logs.AddFlags(cmd.Flags())
	if err := cmd.Flags().Parse(os.Args[1:]); err != nil {
		klog.Fatalf("unable to parse flags: %v", err)
	}

	client, err := cmd.DynamicClient()
	if err != nil {
		klog.Fatalf("unable to construct dynamic client: %v", err)
	}
	mapper, err := cmd.RESTMapper()
	if err != nil {
		klog.Fatalf("unable to construct discovery REST mapper: %v", err)
	}
	custom, customWrites := fakeprov.NewFakeProvider(client, mapper)
	external := &externalStore{series: map[string]map[string][]externalSeries{}}
	cmd.WithCustomMetrics(custom)
	cmd.WithExternalMetrics(external)

	writes := restful.NewContainer()
	writes.Add(customWrites)
	writes.Handle(externalWritePrefix, external)
	go func() {
		server := &http.Server{Addr: *writeAddress, Handler: writes, ReadHeaderTimeout: 3 * time.Second}
		klog.Fatal(server.ListenAndServe())
	}()
	if err := cmd.Run(context.Background()); err != nil {
		klog.Fatalf("unable to run the metrics adapter: %v", err)
	}
}
