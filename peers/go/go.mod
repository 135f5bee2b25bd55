module braid-peers-go

go 1.19
