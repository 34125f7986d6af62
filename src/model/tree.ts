// Walking trees whose shape comes from the input (pool trees, parent links): a log or trace can
// make them 100,000 levels deep or loop back on themselves, so no recursion and no revisits.

/**
 * Visits `root` and every node reachable through `children`, each once, children before their
 * parent (the order a recursive walk would give), with an explicit stack. `children(n)` is called
 * when n is entered and may be lazy; a node met again (a cycle, or a node under two parents) is
 * skipped.
 */
export function postOrder<T>(root: T, children: (n: T) => Iterable<T>, visit: (n: T) => void): void {
  const seen = new Set<T>([root]);
  const nodes: T[] = [root];
  const its: Iterator<T>[] = [children(root)[Symbol.iterator]()];
  while (its.length > 0) {
    const r = its[its.length - 1]!.next();
    if (!r.done) {
      const c = r.value;
      if (!seen.has(c)) {
        seen.add(c);
        nodes.push(c);
        its.push(children(c)[Symbol.iterator]());
      }
      continue;
    }
    its.pop();
    visit(nodes.pop()!);
  }
}
