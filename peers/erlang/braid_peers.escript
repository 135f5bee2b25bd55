#!/usr/bin/env escript
%% Erlang peers of the braid benchmark suite: the same workloads written with
%% processes and messages. Each run prints its measurement on stdout.
%%
%%   braid_peers.escript skynet LEAVES      -> milliseconds for the whole tree
%%   braid_peers.escript ring TASKS HOPS    -> nanoseconds per hop
%%   braid_peers.escript latency WINDOW_MS  -> every wake delay of a process
%%       sleeping 1 ms in a loop beside one busy process per scheduler, in
%%       microseconds beyond the 1 ms, one per line
%%
%% Schedulers: set with ERL_FLAGS="+S N" (the braid harness does).
-mode(compile).

main(["skynet", L]) ->
    Leaves = list_to_integer(L),
    T0 = erlang:monotonic_time(nanosecond),
    Self = self(),
    spawn(fun() -> skynet(Self, 0, Leaves) end),
    Sum = receive S -> S end,
    Expect = Leaves * (Leaves - 1) div 2,
    case Sum of
        Expect -> ok;
        _ -> io:format(standard_error, "wrong sum ~p~n", [Sum]), halt(1)
    end,
    io:format("~.3f~n", [(erlang:monotonic_time(nanosecond) - T0) / 1.0e6]);
main(["ring", N0, H0]) ->
    N = list_to_integer(N0),
    Hops = list_to_integer(H0),
    Self = self(),
    First = spawn(fun() -> receive {next, Next} -> member(Next, Self) end end),
    Last = lists:foldl(
        fun(_, Next) -> spawn(fun() -> member(Next, Self) end) end,
        First, lists:seq(2, N)),
    First ! {next, Last},
    T0 = erlang:monotonic_time(nanosecond),
    First ! {token, Hops},
    receive done -> ok end,
    io:format("~.3f~n", [(erlang:monotonic_time(nanosecond) - T0) / Hops]);
main(["latency", W0]) ->
    Window = list_to_integer(W0),
    Hogs = [spawn(fun hog/0) || _ <- lists:seq(1, erlang:system_info(schedulers_online))],
    Self = self(),
    End = erlang:monotonic_time(microsecond) + Window * 1000,
    spawn(fun() -> Self ! {delays, sleeper(End, [])} end),
    Delays = receive {delays, D} -> D end,
    [exit(H, kill) || H <- Hogs],
    [io:format("~.3f~n", [float(D)]) || D <- Delays],
    ok;
main(_) ->
    io:format(standard_error,
              "usage: braid_peers.escript skynet LEAVES | ring TASKS HOPS | latency WINDOW_MS~n", []),
    halt(2).

skynet(Parent, Num, 1) ->
    Parent ! Num;
skynet(Parent, Num, Size) ->
    Sub = Size div 10,
    Self = self(),
    [spawn(fun() -> skynet(Self, Num + I * Sub, Sub) end) || I <- lists:seq(0, 9)],
    Parent ! collect(10, 0).

collect(0, Sum) -> Sum;
collect(N, Sum) -> receive V -> collect(N - 1, Sum + V) end.

%% A ring member passes each token on with one hop less; the member that
%% receives 0 tells the runner the ring is done.
member(Next, Runner) ->
    receive
        {token, 0} -> Runner ! done;
        {token, T} -> Next ! {token, T - 1}, member(Next, Runner)
    end.

%% A process that computes forever; the schedulers preempt it by reductions.
hog() -> hog(0).
hog(N) -> hog((N + 1) band 16#ffff).

%% Sleeps 1 ms at a time until End; each delay beyond the 1 ms, in µs.
sleeper(End, Acc) ->
    case erlang:monotonic_time(microsecond) of
        Now when Now >= End -> lists:reverse(Acc);
        T0 ->
            timer:sleep(1),
            Late = erlang:monotonic_time(microsecond) - T0 - 1000,
            sleeper(End, [max(Late, 0) | Acc])
    end.
