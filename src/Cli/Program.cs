using Replayvisor.Cli.Bench;

return BenchCommand.Run(args.Length > 0 ? ulong.Parse(args[0]) : 200_000_000, 3, Console.Out);
