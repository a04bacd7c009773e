// A plain Go net/http server, as a static binary (CGO_ENABLED=0): Go makes
// its system calls directly, so an LD_PRELOAD library never sees its
// listener. Serves / and /slow (answered after 2 s); on SIGTERM it shuts
// down gracefully (srv.Shutdown with a timeout) and exits 0.
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
	"syscall"
	"time"
)

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1")
	host := flag.String("host", "127.0.0.1", "address to listen on")
	flag.Parse()
	if *port <= 0 || *port > 65535 {
		log.Fatal("-port N is required")
	}
	log.SetPrefix("gohttp: ")
	log.SetFlags(0)

	pid := os.Getpid()
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Pid", fmt.Sprint(pid))
		fmt.Fprintf(w, "pid %d gohttp\n", pid)
	}
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
			return
		}
		answer(w)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { answer(w) })

	srv := &http.Server{Addr: fmt.Sprintf("%s:%d", *host, *port), Handler: mux}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan error, 1)
	go func() {
		<-stop
		log.Printf("pid %d: stop signal, shutting down", pid)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()

	log.Printf("pid %d listening on %s", pid, srv.Addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("listen: %v", err)
	}
	if err := <-done; err != nil {
		log.Fatalf("shutdown: %v", err)
	}
	log.Printf("pid %d: stopped", pid)
}
