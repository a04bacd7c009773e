module graceful

go 1.19
