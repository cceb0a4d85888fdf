import { Component, type ReactNode } from 'react';

/** Keeps a rendering error in one page from blanking the whole app; shows it instead. */
export class ErrorBoundary extends Component<{ children: ReactNode; resetKey: string; title: string }, { error: Error | null }> {
  state = { error: null as Error | null };
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  componentDidUpdate(prev: { resetKey: string }) {
    if (prev.resetKey !== this.props.resetKey && this.state.error) this.setState({ error: null });
  }
  render() {
    if (this.state.error) {
      return (
        <div className="alert" role="alert">
          <strong>{this.props.title}</strong> <code>{this.state.error.message}</code>
        </div>
      );
    }
    return this.props.children;
  }
}
