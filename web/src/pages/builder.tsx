export default function Page() {
  return <h1>builder</h1>;
}
