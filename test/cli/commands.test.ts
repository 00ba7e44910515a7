import { describe, expect, it } from 'vitest';
import { buildProgram, COMMANDS, invokedCommand, main, type CliIO } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';

function io(): CliIO & ReturnType<typeof memoryOutput> {
  return { ...memoryOutput(), cwd: process.cwd() };
}

describe('cli command table', () => {
  it.each([
    [['status'], 'status'],
    [['status', '--json'], 'status'],
    [['status', '--help'], 'status'],
    [['-C', '/tmp/x', 'history', 'dev'], 'history'],
    [['--cwd', '/tmp/x', 'registry', 'list'], 'registry'],
    [['--cwd=/tmp/x', 'lineage', 'HEAD'], 'lineage'],
    [['-C/tmp/x', 'exp', 'show'], 'exp'],
    [['-C', 'status', 'params', 'diff'], 'params'],
    [[], undefined],
    [['--help'], undefined],
    [['-h', 'status'], undefined],
    [['help', 'status'], undefined],
    [['stauts'], undefined],
    [['--', 'status'], undefined],
    [['-C'], undefined],
  ])('invokedCommand %j is %s', (argv, name) => {
    expect(invokedCommand(argv)).toBe(name);
  });

  it('a command registered alone parses, helps and fails as it does beside every other command', async () => {
    const all = await buildProgram(io());
    expect(all.commands.map((c) => c.name())).toEqual([...COMMANDS]);
    for (const name of COMMANDS) {
      const alone = await buildProgram(io(), [name]);
      // Each command module registers its own command and nothing else.
      expect(alone.commands.map((c) => c.name())).toEqual([name]);
      const full = all.commands.find((c) => c.name() === name)!;
      const only = alone.commands[0]!;
      expect(only.helpInformation()).toBe(full.helpInformation());
      for (const sub of full.commands)
        expect(only.commands.find((c) => c.name() === sub.name())?.helpInformation()).toBe(
          sub.helpInformation(),
        );
    }
  });

  it('lockstep with no plain command still lists and suggests from the whole table', async () => {
    const help = io();
    expect(await main(['--help'], help)).toBe(0);
    for (const name of COMMANDS) expect(help.stdout.join('\n')).toContain(name);
    const typo = io();
    expect(await main(['stauts'], typo)).toBe(2);
    expect(typo.stderr.join('\n')).toContain('(Did you mean status?)');
    const sub = io();
    expect(await main(['status', '--nope'], sub)).toBe(2);
    expect(sub.stderr.join('\n')).toContain("unknown option '--nope'");
  });
});
