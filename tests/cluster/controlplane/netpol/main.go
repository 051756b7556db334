// Command netpol enforces NetworkPolicy on the real-node test tier's pods: kube-router's network
// policy controller on its own (its firewall; neither its BGP router nor its service proxy), the
// way k3s embeds it. It watches pods, namespaces and NetworkPolicies and keeps, for every pod of
// this node, filter-table chains (KUBE-ROUTER-*, KUBE-POD-FW-*, KUBE-NWPLCY-*) and ipsets
// (KUBE-SRC-*, KUBE-DST-*) that match the pod's own address.
//
// It leaves its rules in place when it stops: the tier's teardown removes them, the same way
// after a clean stop as after a crash, so that one path is the one the tests prove.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/cloudnativelabs/kube-router/v2/pkg/controllers/netpol"
	"github.com/cloudnativelabs/kube-router/v2/pkg/healthcheck"
	"github.com/cloudnativelabs/kube-router/v2/pkg/options"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

type settings struct {
	kubeconfig  string
	nodeName    string
	serviceCIDR string
	syncPeriod  time.Duration
}

func main() {
	klog.InitFlags(nil)
	var s settings
	flag.StringVar(&s.kubeconfig, "kubeconfig", "", "kubeconfig of the node's API server (required)")
	flag.StringVar(&s.nodeName, "hostname-override", "", "the Node object's name (required)")
	flag.StringVar(&s.serviceCIDR, "service-cluster-ip-range", "",
		"the cluster's service range; traffic to it is left to kube-proxy (required)")
	flag.DurationVar(&s.syncPeriod, "iptables-sync-period", time.Minute,
		"full resync period, on top of the resync on every pod, namespace and policy change")
	flag.Parse()
	if s.kubeconfig == "" || s.nodeName == "" || s.serviceCIDR == "" {
		fmt.Fprintln(os.Stderr, "netpol: --kubeconfig, --hostname-override and --service-cluster-ip-range are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, s); err != nil {
		klog.ErrorS(err, "network policy controller failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

// kubeRouterConfig is the subset of kube-router's configuration its policy controller reads.
func kubeRouterConfig(s settings) *options.KubeRouterConfig {
	config := options.NewKubeRouterConfig()
	// Only the firewall: nothing here starts the router or the proxy, and saying so keeps the
	// configuration honest about it (the service proxy is what GHSA-phqm-jgc3-qf8g concerns).
	config.RunFirewall = true
	config.RunRouter = false
	config.RunServiceProxy = false
	config.RunLoadBalancer = false
	// The tier's pods are IPv4 only; no ip6tables rules.
	config.EnableIPv4 = true
	config.EnableIPv6 = false
	config.ClusterIPCIDRs = []string{s.serviceCIDR}
	config.HostnameOverride = s.nodeName
	config.IPTablesSyncPeriod = s.syncPeriod
	// Its metrics would need kube-router's metrics server; nothing reads them here.
	config.MetricsEnabled = false
	return config
}

func run(ctx context.Context, s settings) error {
	restConfig, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", s.kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	config := kubeRouterConfig(s)
	iptablesHandlers, ipsetHandlers, err := netpol.NewIPTablesHandlers(config)
	if err != nil {
		return err
	}

	factory := informers.NewSharedInformerFactory(client, 0)
	pods := factory.Core().V1().Pods().Informer()
	namespaces := factory.Core().V1().Namespaces().Informer()
	policies := factory.Networking().V1().NetworkPolicies().Informer()
	factory.Start(ctx.Done())
	for informer, synced := range factory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			return fmt.Errorf("the %v informer did not sync", informer)
		}
	}

	controller, err := netpol.NewNetworkPolicyController(client, config, pods, policies, namespaces,
		&sync.Mutex{}, iptablesHandlers, ipsetHandlers)
	if err != nil {
		return fmt.Errorf("creating the network policy controller: %w", err)
	}
	handlers := map[cache.SharedIndexInformer]cache.ResourceEventHandler{
		pods:       controller.PodEventHandler,
		namespaces: controller.NamespaceEventHandler,
		policies:   controller.NetworkPolicyEventHandler,
	}
	for informer, handler := range handlers {
		if _, err := informer.AddEventHandler(handler); err != nil {
			return err
		}
	}

	// The controller sends a heartbeat at every sync and blocks until someone takes it;
	// kube-router's health server is not run here, so they are taken and dropped.
	heartbeats := make(chan *healthcheck.ControllerHeartbeat)
	go func() {
		for range heartbeats {
		}
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	go controller.Run(heartbeats, ctx.Done(), &wg)
	klog.InfoS("network policy controller running", "node", s.nodeName, "serviceRange", s.serviceCIDR)
	<-ctx.Done()
	// A sync in progress finishes (its iptables-restore is one transaction either way).
	wg.Wait()
	klog.InfoS("stopped on a signal; the rules stay until the node's teardown removes them")
	return nil
}
