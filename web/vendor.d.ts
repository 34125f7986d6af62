// The parts of the report's two untyped libraries that web/report.ts uses, so the page is
// type-checked (npm run typecheck) against what it calls.

declare module 'd3-selection' {
  export interface Selection {
    datum(d: unknown): Selection;
    call(f: (s: Selection) => void): Selection;
  }
  export function select(node: Element): Selection;
}

declare module 'd3-flame-graph' {
  import type { Selection } from 'd3-selection';
  /** A flame graph: every setter returns the chart, so calls chain; the chart renders when called on a selection. */
  export interface FlameGraph {
    (s: Selection): void;
    width(w: number): FlameGraph;
    cellHeight(h: number): FlameGraph;
    inverted(b: boolean): FlameGraph;
    minFrameSize(n: number): FlameGraph;
    transitionDuration(ms: number): FlameGraph;
    sort(f: (a: any, b: any) => number): FlameGraph;
    label(f: (d: any) => string): FlameGraph;
    setSearchMatch(f: (d: any, term: string) => boolean): FlameGraph;
    setSearchHandler(f: (results: unknown, sum: number, total: number) => void): FlameGraph;
    setDetailsElement(el: Element): FlameGraph;
    setDetailsHandler(f: (text: string | null) => void): FlameGraph;
    search(term: string): void;
    clear(): void;
    resetZoom(): void;
  }
  export default function flamegraph(): FlameGraph;
}
