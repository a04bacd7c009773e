// A net/http server written the way graceful-restart articles teach: the
// port comes from a flag, SIGTERM calls Shutdown with a timeout and the
// program exits 0. With -graceful=false it has no signal handling at all
// and dies at SIGTERM. It knows nothing about hotrestart.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 8080, "port to listen on")
	graceful := flag.Bool("graceful", true, "on SIGTERM, finish in-flight requests and exit 0")
	flag.Parse()

	pid := strconv.Itoa(os.Getpid())
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Pid", pid)
		fmt.Fprintf(w, "hello from %s\n", pid)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Second)
		w.Header().Set("X-Pid", pid)
		fmt.Fprintf(w, "slow hello from %s\n", pid)
	})
	srv := &http.Server{Addr: fmt.Sprintf("%s:%d", *addr, *port), Handler: mux}

	if !*graceful {
		log.Printf("pid %s listening on %s", pid, srv.Addr)
		log.Fatal(srv.ListenAndServe())
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		log.Printf("pid %s listening on %s", pid, srv.Addr)
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	<-ctx.Done()
	log.Printf("pid %s shutting down", pid)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Fatalf("shutdown: %v", err)
	}
	log.Printf("pid %s stopped", pid)
}
