/**
 * rclone's `--filter-from` syntax, checked before a run so that a bad line is a configuration error
 * naming its line, not a "filters changed" safety stop followed by rclone's "malformed rule".
 * The rules are those of rclone 1.60 (fs/filter: forEachLine, AddRule, globToRegexp). Pure.
 */

export interface FilterProblem {
  /** 1-based, as an editor shows it. */
  readonly line: number;
  readonly rule: string;
  readonly problem: string;
}

export function filterRuleProblems(text: string): FilterProblem[] {
  const problems: FilterProblem[] = [];
  text.split('\n').forEach((raw, index) => {
    const rule = raw.trim();
    // rclone skips blank lines and comments.
    if (rule === '' || rule.startsWith('#') || rule.startsWith(';')) return;
    const problem = ruleProblem(rule);
    if (problem) problems.push({ line: index + 1, rule, problem });
  });
  return problems;
}

function ruleProblem(rule: string): string | undefined {
  if (rule === '!') return undefined;
  if (rule.startsWith('- ') || rule.startsWith('+ ')) return globProblem(rule.slice(2));
  const hint = /^[-+]\S/.test(rule) ? ` (a space must follow the "${rule[0]}")` : '';
  return `not a filter rule${hint}: a rule is "- pattern" (exclude), "+ pattern" (include) or "!" (forget the rules above); comments start with # or ;`;
}

/** The errors rclone 1.60's glob translation reports, in the same order it finds them. */
function globProblem(glob: string): string | undefined {
  let stars = 0;
  let inBrackets = 0;
  let inBraces = false;
  let inRegexp = false;
  let inRegexpEnd = false;
  let slashed = false;
  let last = '';
  let previous = '';
  for (const c of glob) {
    last = previous;
    previous = c;
    if (slashed) {
      slashed = false;
      continue;
    }
    if (inRegexpEnd) {
      if (c === '}') continue;
      inRegexpEnd = false;
    }
    if (inRegexp) {
      if (c === '}' && last === '}') {
        inRegexp = false;
        inRegexpEnd = true;
      }
      continue;
    }
    if (c !== '*') {
      if (stars > 2) return 'too many stars in a row (** matches across folders, * within one)';
      stars = 0;
    }
    if (inBrackets > 0) {
      if (c === '[') inBrackets++;
      if (c === ']') inBrackets--;
      continue;
    }
    switch (c) {
      case '\\':
        slashed = true;
        break;
      case '*':
        stars++;
        break;
      case '[':
        inBrackets++;
        break;
      case ']':
        return 'a "]" without its "["';
      case '{':
        if (inBraces) {
          if (last !== '{') return '"{" inside "{...}" (alternatives cannot nest)';
          inRegexp = true;
          inBraces = false;
        } else {
          inBraces = true;
        }
        break;
      case '}':
        if (!inBraces) return 'a "}" without its "{"';
        inBraces = false;
        break;
    }
  }
  if (stars > 2) return 'too many stars in a row (** matches across folders, * within one)';
  if (inBrackets > 0) return 'a "[" without its "]"';
  if (inBraces) return 'a "{" without its "}"';
  if (inRegexp) return 'a "{{" without its "}}"';
  return undefined;
}
