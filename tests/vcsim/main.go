// vcsim: VMware's vSphere API simulator (govmomi's simulator package) on one address, for the tests
// of MyPaas's vSphere driver. Built by build.sh from Debian's golang-github-vmware-govmomi-dev.
//
//	vcsim -listen 127.0.0.1:8989 -user user -pass pass
//
// Serves http://ADDR/sdk (a vCenter: datacenter DC0, cluster DC0_C0, datastore LocalDS_0, network
// "VM Network"); prints "ready URL" on stdout once it answers, and stops on SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8989", "address to serve the API on")
	user := flag.String("user", "user", "the only user name accepted")
	pass := flag.String("pass", "pass", "its password")
	flag.Parse()

	model := simulator.VPX()
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *pass)}
	server := model.Service.NewServer()
	fmt.Printf("ready %s\n", server.URL)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	server.Close()
	model.Remove()
}
